#include "errors.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace sc {
namespace {

thread_local std::string* t_sink = nullptr;

// The kernel's internal ENOTSUPP (524) reaches user space from BPF syscalls;
// libc has no name for it.
constexpr int kEnotsupp = 524;

std::string ErrnoCode(int err) {
  if (err == kEnotsupp) return "ENOTSUPP";
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

std::string ErrnoMessage(int err) {
  if (err == kEnotsupp) return "Operation not supported";
  return strerror(err);
}

int Print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  if (t_sink == nullptr) return vfprintf(stderr, format, args);

  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return n;
  size_t at = t_sink->size();
  t_sink->resize(at + static_cast<size_t>(n) + 1);
  vsnprintf(&(*t_sink)[at], static_cast<size_t>(n) + 1, format, args);
  t_sink->resize(at + static_cast<size_t>(n));
  return n;
}

}  // namespace

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op) {
  Napi::Error error = Napi::Error::New(
      env, op + ": " + ErrnoMessage(err) + " (errno " + std::to_string(err) + ")");
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, ErrnoCode(err)));
  error.Set("op", Napi::String::New(env, op));
  return error;
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op, const std::string& log) {
  Napi::Error error = ErrnoError(env, err, op);
  error.Set("log", Napi::String::New(env, log));
  return error;
}

Napi::Error ClosedError(Napi::Env env, const char* what) {
  Napi::Error error = Napi::Error::New(env, std::string(what) + " is closed");
  error.Set("code", Napi::String::New(env, "ERR_CLOSED"));
  return error;
}

void InstallLibbpfPrint() { libbpf_set_print(Print); }

LogCapture::LogCapture() : previous_(t_sink) { t_sink = &text_; }

LogCapture::~LogCapture() { t_sink = previous_; }

Napi::Error LogCapture::Error(Napi::Env env, int err, const std::string& op) const {
  return text_.empty() ? ErrnoError(env, err, op) : ErrnoError(env, err, op, text_);
}

}  // namespace sc
