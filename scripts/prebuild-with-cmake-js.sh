#!/bin/sh
# prebuildify calls its builder like node-gyp:
#   rebuild --target=V --devdir=D --arch=A --release|--debug
# The addon is Node-API (one build for every Node version) and built by
# cmake-js, so only the build type matters.
set -eu
case " $* " in
  *" --debug "*) exec cmake-js rebuild --debug ;;
  *) exec cmake-js rebuild ;;
esac
