// The params types as Python sees them (plain subclasses of the eurollm.hpp structs).
#pragma once

#include "common.h"

namespace eurollm_py {

struct ModelParams : eurollm::ModelParams {};
struct ContextParams : eurollm::ContextParams {};
struct GeneratorParams : eurollm::GeneratorParams {};
// eurollm.hpp has no wrapper for these yet.
struct EmbedParams : eurollm_embed_params {
    EmbedParams() { eurollm_embed_params_init(this, EUROLLM_EMBED_PARAMS_VERSION); }
};

struct TrainerParams : eurollm_trainer_params {
    TrainerParams() { eurollm_trainer_params_init(this, EUROLLM_TRAINER_PARAMS_VERSION); }
};

// An enum value given as a member, an int, or a member name in any case ("cpu" -> Device.CPU);
// `member` is any member of the enum class.
int enum_arg(py::handle v, py::object member, const char *what);

// Sets fields from keyword arguments; an unknown key raises TypeError.
template <typename P>
void apply_kwargs(P &p, const py::kwargs &kw);

// `params` (None or a P) overridden by `kw`.
template <typename P>
P params_arg(py::handle params, const py::kwargs &kw);

}  // namespace eurollm_py
