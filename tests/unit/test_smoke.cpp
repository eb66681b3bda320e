#include <gtest/gtest.h>
#include "kiln/kiln.h"
TEST(Smoke, Version) { EXPECT_STRNE(kiln::version(), ""); }
