// JS errors made by the binding, and the capture of libbpf's log.
#pragma once

#include <napi.h>

#include <string>

namespace sc {

// Error "<op>: <strerror> (errno N)" with properties errno (N > 0), code
// ('EPERM', ...) and op (the C call that failed); log is set when given.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op);
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op, const std::string& log);

// Error with code 'ERR_CLOSED', for a call on an object that was closed.
Napi::Error ClosedError(Napi::Env env, const char* what);

// Routes libbpf's print callback through LogCapture. Without a capture on the
// calling thread, messages go to stderr as libbpf's default printer does.
void InstallLibbpfPrint();

// While alive, collects what libbpf prints on this thread (every level but
// DEBUG, so the verifier log that libbpf prints on a failed load is kept).
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  const std::string& text() const { return text_; }
  void Clear() { text_.clear(); }
  // ErrnoError with `log` set to the text captured so far, if there is any.
  Napi::Error Error(Napi::Env env, int err, const std::string& op) const;

 private:
  std::string text_;
  std::string* previous_;
};

}  // namespace sc
