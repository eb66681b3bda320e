// Internal helpers to throw kiln::Error with a streamed message.
#pragma once
#include <sstream>

#include "kiln/error.h"

#define KILN_THROW(code, expr)                          \
  do {                                                  \
    std::ostringstream kiln_err_os_;                    \
    kiln_err_os_ << expr;                               \
    throw ::kiln::Error(::kiln::ErrorCode::code, kiln_err_os_.str()); \
  } while (0)

#define KILN_CHECK(cond, code, expr) \
  do {                               \
    if (!(cond)) KILN_THROW(code, expr); \
  } while (0)
