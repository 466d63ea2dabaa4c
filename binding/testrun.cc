#include "testrun.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <utility>

#include "worker.h"

namespace sc {

namespace {

class TestRunWorker : public PromiseWorker {
 public:
  TestRunWorker(Napi::Env env, UniqueFd progFd, std::vector<uint8_t> in, uint32_t repeat,
                uint32_t dataSizeOut)
      : PromiseWorker(env, "syncookie:testRun"),
        progFd_(std::move(progFd)),
        in_(std::move(in)),
        out_(dataSizeOut),
        repeat_(repeat) {}

 private:
  void Execute() override {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in_.data();
    opts.data_size_in = static_cast<__u32>(in_.size());
    // data_size_out 0 means "no limit" to the kernel: pass no buffer at all.
    opts.data_out = out_.empty() ? nullptr : out_.data();
    opts.data_size_out = static_cast<__u32>(out_.size());
    opts.repeat = static_cast<int>(repeat_);
    int err = bpf_prog_test_run_opts(progFd_.get(), &opts);
    if (err != 0) return Fail(-err, "bpf_prog_test_run_opts");
    retval_ = opts.retval;
    duration_ = opts.duration;
    if (opts.data_size_out < out_.size()) out_.resize(opts.data_size_out);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("retval", Napi::Number::New(env, retval_));
    result.Set("data", Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size()));
    result.Set("durationNs", Napi::Number::New(env, duration_));
    return result;
  }

  UniqueFd progFd_;
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_;
  uint32_t repeat_;
  uint32_t retval_ = 0;
  uint32_t duration_ = 0;
};

}  // namespace

Napi::Value StartTestRun(Napi::Env env, UniqueFd progFd, std::vector<uint8_t> in, uint32_t repeat,
                         uint32_t dataSizeOut) {
  return (new TestRunWorker(env, std::move(progFd), std::move(in), repeat, dataSizeOut))->Start();
}

}  // namespace sc
