// Argument readers. They check only what memory safety needs (the JS type);
// ranges and meaning are checked in TypeScript or by the kernel.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace sc {

inline Napi::Value Arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

inline uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// A Buffer or any other ArrayBufferView, as bytes.
inline Napi::Buffer<uint8_t> ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

}  // namespace sc
