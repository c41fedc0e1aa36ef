// enlace.h compiles as C++ and declares every function noexcept.
#include "enlace/enlace.h"

static_assert(noexcept(enlace_version()));
static_assert(noexcept(enlace_db_free(nullptr)));
static_assert(sizeof(enlace_error) >= sizeof(int) + sizeof(char*));
