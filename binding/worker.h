// An AsyncWorker that settles a promise: Execute() runs off the main thread
// and either succeeds (Result() builds the value on the main thread) or calls
// Fail() with the errno and the C call that failed.
#pragma once

#include <napi.h>

#include <string>

#include "errors.h"

namespace sc {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  // Queues the worker, which deletes itself once the promise is settled.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

 protected:
  PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  // err is a positive errno.
  void Fail(int err, const char* op) {
    errno_ = err;
    op_ = op;
    SetError(op);
  }
  // The rejection carries `log`: what libbpf printed during Execute.
  void FailWithLog(int err, const char* op, std::string log) {
    hasLog_ = true;
    log_ = std::move(log);
    Fail(err, op);
  }
  // The same, but only if libbpf printed anything.
  void Fail(int err, const char* op, const LogCapture& capture) {
    if (capture.text().empty()) return Fail(err, op);
    FailWithLog(err, op, capture.text());
  }

  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
  }
  void OnError(const Napi::Error&) override {
    Napi::Env env = Env();
    deferred_.Reject(
        (hasLog_ ? ErrnoError(env, errno_, op_, log_) : ErrnoError(env, errno_, op_)).Value());
  }

  Napi::Promise::Deferred deferred_;
  int errno_ = 0;
  std::string op_;
  bool hasLog_ = false;
  std::string log_;
};

}  // namespace sc
