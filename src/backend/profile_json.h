// kiln::Profile <-> AITune's profile dict ({name: [min, opt, max]}), as JSON values for the backend's files.
#pragma once
#include <string>
#include <vector>

#include "backend/python_json.h"
#include "kiln/profile.h"

namespace kiln::backend {

pyjson::Json shape_to_json(const Shape& s);
// `what` names the value in errors ("profile 0: input 'x' min").
Shape shape_from_json(const pyjson::Json& j, const std::string& what);
pyjson::Json profile_to_json(const Profile& p);
Profile profile_from_json(const pyjson::Json& j, const std::string& what);
pyjson::Json profiles_to_json(const std::vector<Profile>& ps);
std::vector<Profile> profiles_from_json(const pyjson::Json& j, const std::string& what);

}  // namespace kiln::backend
