// bpf/syncookie.h for C++: the structs, enum and constants shared with the
// BPF program. The header is C11; C++ spells its assertion static_assert.
#pragma once

#include <linux/types.h>

#define _Static_assert static_assert
#include "syncookie.h"
#undef _Static_assert
