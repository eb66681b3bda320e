// kiln — umbrella header.
#pragma once
#include "kiln/builder.h"
#include "kiln/compare.h"
#include "kiln/device.h"
#include "kiln/dtype.h"
#include "kiln/engine.h"
#include "kiln/error.h"
#include "kiln/logging.h"
#include "kiln/model.h"
#include "kiln/profile.h"
#include "kiln/tensor.h"
#include "kiln/version.h"
