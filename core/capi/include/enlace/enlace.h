/* enlace.h: the C API of the enlace core, for apps that embed it (issue 7).
 *
 * Pure C (C99 and later, and C++), for Swift, Kotlin/JNI, Dart FFI and
 * React Native JSI. It wraps the C++ core (enlace/replica.h, enlace/sync.h)
 * and does no network I/O: the app sends the requests the library builds
 * with its own HTTP stack and hands the responses back (docs/EMBEDDING.md).
 *
 * Conventions
 * - Handles are opaque: enlace_db (one device's vault), enlace_sync (one sync
 *   run over a db), enlace_request (one HTTP request to send).
 * - Functions returning int return ENLACE_OK (0) or an enlace_code; functions
 *   returning a pointer return NULL on failure.
 * - `err` may be NULL. It must start zeroed (ENLACE_ERROR_INIT). It is written
 *   only on failure; a message left in it by an earlier failure is freed
 *   first. Free the message with enlace_error_clear.
 * - Strings are UTF-8 and NUL-terminated. `char*` results belong to the
 *   caller and are freed with enlace_free. `const char*` results belong to
 *   the handle they came from.
 * - Records and values are JSON texts. Record ids are 32 hex characters.
 *
 * Thread safety
 * - Every handle carries a lock. A call on a handle that another thread is
 *   using at that moment is refused with ENLACE_BUSY and changes nothing; it
 *   never waits and never corrupts. A sync handle uses its db too, so a call
 *   on either is BUSY while the other is in use. Different db handles (on
 *   different folders) are independent. enlace_request handles are
 *   immutable and may be read from any thread.
 * - enlace_db_close, enlace_sync_free, enlace_request_free and
 *   enlace_db_free must not race with other calls on the same handle.
 *
 * Lifetime
 * - enlace_db_close closes the vault and leaves the handle in a dead state:
 *   every later call on it (or on a sync handle made from it) fails with
 *   ENLACE_CLOSED. enlace_db_free closes if needed and releases the handle;
 *   the pointer must not be used after it. A sync handle may outlive its db
 *   handle (close or free): its calls then fail with ENLACE_CLOSED.
 */
#ifndef ENLACE_ENLACE_H_
#define ENLACE_ENLACE_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define ENLACE_API
#elif defined(__GNUC__) || defined(__clang__)
#define ENLACE_API __attribute__((visibility("default")))
#else
#define ENLACE_API
#endif

#ifdef __cplusplus
#define ENLACE_NOEXCEPT noexcept
#else
#define ENLACE_NOEXCEPT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. 1-13 are the core's StatusCode values. */
typedef enum enlace_code {
  ENLACE_OK = 0,
  ENLACE_INVALID_ARGUMENT = 1, /* malformed input: NULL, bad JSON, a value the schema refuses */
  ENLACE_NOT_FOUND = 2,
  ENLACE_ALREADY_EXISTS = 3,
  ENLACE_WRONG_PASSPHRASE = 4, /* or wrong key; nothing changed */
  ENLACE_UNAUTHENTICATED = 5,
  ENLACE_PERMISSION_DENIED = 6,
  ENLACE_CORRUPTION = 7,
  ENLACE_DECRYPT_FAILED = 8,
  ENLACE_FAILED_PRECONDITION = 9, /* wrong order, e.g. sync before a team */
  ENLACE_RESOURCE_EXHAUSTED = 10,
  ENLACE_UNAVAILABLE = 11, /* the hub answered with an error worth retrying */
  ENLACE_IO_ERROR = 12,
  ENLACE_INTERNAL = 13,
  ENLACE_BUSY = 14,  /* the handle is in use by another thread; try again */
  ENLACE_CLOSED = 15 /* the db handle was closed */
} enlace_code;

typedef struct enlace_error {
  int code;      /* an enlace_code */
  char* message; /* plain language, never a secret; free with enlace_error_clear */
} enlace_error;

#define ENLACE_ERROR_INIT \
  { 0, NULL }

typedef struct enlace_db enlace_db;
typedef struct enlace_sync enlace_sync;
typedef struct enlace_request enlace_request;

/* Flags for create/open. */
#define ENLACE_OPEN_DEFAULT 0u
/* Cheapest passphrase KDF (Argon2id minimum): for tests only. A libenlace
 * built without the CMake option ENLACE_TEST_HOOKS (every release) refuses
 * it: ENLACE_INVALID_ARGUMENT. */
#define ENLACE_OPEN_TEST_KDF 1u

/* Roles for invites. */
#define ENLACE_ROLE_COORDINATOR 1
#define ENLACE_ROLE_FIELD 2

/* ---- library ---------------------------------------------------------------- */

/* "0.1.0". Static string. Thread-safe. */
ENLACE_API const char* enlace_version(void) ENLACE_NOEXCEPT;
/* The wire protocol version this library speaks. Thread-safe. */
ENLACE_API int enlace_protocol_version(void) ENLACE_NOEXCEPT;
/* Bytes of a raw vault key (32). Thread-safe. */
ENLACE_API size_t enlace_key_size(void) ENLACE_NOEXCEPT;
/* sizeof(enlace_error), to check the binding's layout. Thread-safe. */
ENLACE_API size_t enlace_error_size(void) ENLACE_NOEXCEPT;
/* Initialises the crypto library. Optional (every entry point does it) and
 * idempotent. Thread-safe. */
ENLACE_API int enlace_init(enlace_error* err) ENLACE_NOEXCEPT;
/* Frees a buffer the library returned. NULL is fine. Thread-safe. */
ENLACE_API void enlace_free(void* p) ENLACE_NOEXCEPT;
/* Frees err->message and zeroes `err`. NULL is fine. Thread-safe. */
ENLACE_API void enlace_error_clear(enlace_error* err) ENLACE_NOEXCEPT;
/* A stable lower-case name for `code`. Static string. Thread-safe. */
ENLACE_API const char* enlace_code_name(int code) ENLACE_NOEXCEPT;

/* ---- vault ---------------------------------------------------------------- */

/* Creates a new device in folder `dir` (created if missing), its vault wrapped
 * under `passphrase`. ENLACE_ALREADY_EXISTS if one is there. Thread-safe (a
 * new handle); two handles must not open the same folder. */
ENLACE_API enlace_db* enlace_db_create(const char* dir, const char* passphrase, unsigned flags,
                                       enlace_error* err) ENLACE_NOEXCEPT;
/* Opens an existing device. ENLACE_WRONG_PASSPHRASE, ENLACE_NOT_FOUND,
 * ENLACE_CORRUPTION. Thread-safe as enlace_db_create. */
ENLACE_API enlace_db* enlace_db_open(const char* dir, const char* passphrase, unsigned flags,
                                     enlace_error* err) ENLACE_NOEXCEPT;
/* The same with a raw key of enlace_key_size() bytes from the platform
 * keystore instead of a passphrase. The key is used as a 256-bit secret with
 * the cheapest Argon2id cost (it needs no stretching); a vault made with a key
 * opens only with that key. Thread-safe as enlace_db_create. */
ENLACE_API enlace_db* enlace_db_create_with_key(const char* dir, const uint8_t* key,
                                                size_t key_size, enlace_error* err) ENLACE_NOEXCEPT;
ENLACE_API enlace_db* enlace_db_open_with_key(const char* dir, const uint8_t* key, size_t key_size,
                                              enlace_error* err) ENLACE_NOEXCEPT;
/* Closes the vault; the handle stays allocated but dead (ENLACE_CLOSED).
 * Closing twice is fine. Must not race with other calls on `db`. */
ENLACE_API int enlace_db_close(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;
/* Closes if needed and releases the handle. NULL is fine. The pointer is
 * invalid afterwards. Must not race with other calls on `db`. */
ENLACE_API void enlace_db_free(enlace_db* db) ENLACE_NOEXCEPT;
/* Re-wraps the vault under `next`. ENLACE_WRONG_PASSPHRASE if `current` is
 * wrong (nothing changed). Not for key-made vaults. BUSY if `db` is in use. */
ENLACE_API int enlace_db_change_passphrase(enlace_db* db, const char* current, const char* next,
                                           enlace_error* err) ENLACE_NOEXCEPT;
/* Closes the vault and destroys its files (vault.bin, store.db and its WAL,
 * overwritten then deleted) and the folder if it is then empty. The handle is dead afterwards. BUSY
 * if `db` is in use. */
ENLACE_API int enlace_db_wipe(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;
/* This device's id / its team's id ("" before a team), 32 hex characters;
 * enlace_free. BUSY if `db` is in use. */
ENLACE_API char* enlace_db_device_id(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;
ENLACE_API char* enlace_db_team_id(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;
/* {"device":..,"team":..,"pending_writes":N,"last_sync_ms":N (0: never),
 *  "cursor":N,"clock_offset_ms":N,"members":N}; enlace_free. BUSY if in use. */
ENLACE_API char* enlace_db_status(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;

/* ---- requests the app sends ------------------------------------------------- */

/* "POST", "GET". Owned by `req`. Thread-safe. NULL for a NULL req. */
ENLACE_API const char* enlace_request_method(const enlace_request* req) ENLACE_NOEXCEPT;
/* The path to append to the hub URL, e.g. "/v1/sync". Owned by `req`. */
ENLACE_API const char* enlace_request_path(const enlace_request* req) ENLACE_NOEXCEPT;
/* Headers to send exactly as given (signature headers included). */
ENLACE_API size_t enlace_request_header_count(const enlace_request* req) ENLACE_NOEXCEPT;
ENLACE_API const char* enlace_request_header_name(const enlace_request* req,
                                                  size_t i) ENLACE_NOEXCEPT;
ENLACE_API const char* enlace_request_header_value(const enlace_request* req,
                                                   size_t i) ENLACE_NOEXCEPT;
/* The body (may be empty: size 0). Owned by `req`. */
ENLACE_API const uint8_t* enlace_request_body(const enlace_request* req,
                                              size_t* size) ENLACE_NOEXCEPT;
ENLACE_API void enlace_request_free(enlace_request* req) ENLACE_NOEXCEPT;

/* The hub's error answer (any status but 200) as an error: 400
 * INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404
 * NOT_FOUND, 409 FAILED_PRECONDITION, 413 RESOURCE_EXHAUSTED, else
 * UNAVAILABLE, with the hub's reason as message. ENLACE_OK for 200.
 * Thread-safe. */
ENLACE_API int enlace_hub_check(int http_status, const uint8_t* body, size_t size,
                                enlace_error* err) ENLACE_NOEXCEPT;

/* ---- team ------------------------------------------------------------------ */

/* The first coordinator: creates the team (if this device has none) and
 * builds the request registering it with a one-time bootstrap token from the
 * hub operator. Send it, then pass the answer to
 * enlace_db_register_team_response. BUSY if `db` is in use. */
ENLACE_API enlace_request* enlace_db_register_team_request(enlace_db* db, const char* team_name,
                                                           const char* device_name,
                                                           const char* bootstrap_token,
                                                           enlace_error* err) ENLACE_NOEXCEPT;
ENLACE_API int enlace_db_register_team_response(enlace_db* db, int http_status, const uint8_t* body,
                                                size_t size, enlace_error* err) ENLACE_NOEXCEPT;
/* A coordinator invites a device: builds the request that registers the
 * invite (check its answer with enlace_hub_check) and writes the one-time
 * code to hand over in person to `*code` (enlace_free). `role` is
 * ENLACE_ROLE_*; `tls_pin` may be "" or NULL. BUSY if `db` is in use. */
ENLACE_API enlace_request* enlace_db_invite_request(enlace_db* db, const char* hub_url,
                                                    const char* tls_pin, int role,
                                                    uint64_t valid_for_ms, char** code,
                                                    enlace_error* err) ENLACE_NOEXCEPT;
/* A new device (no team yet) redeems `code`: the request to send, then the
 * answer to enlace_db_join_response with the same code. The hub URL is in
 * the code: enlace_invite_hub_url. BUSY if `db` is in use. */
ENLACE_API enlace_request* enlace_db_join_request(enlace_db* db, const char* code,
                                                  const char* device_name,
                                                  enlace_error* err) ENLACE_NOEXCEPT;
ENLACE_API int enlace_db_join_response(enlace_db* db, const char* code, int http_status,
                                       const uint8_t* body, size_t size,
                                       enlace_error* err) ENLACE_NOEXCEPT;
/* The hub URL an invite code names; enlace_free. Thread-safe. */
ENLACE_API char* enlace_invite_hub_url(const char* code, enlace_error* err) ENLACE_NOEXCEPT;

/* ---- records ---------------------------------------------------------------- */

/* Sets the fields of `fields_json` (an object: field -> JSON value) on a
 * record: a new one when `id` is NULL or "", else that one. Values are checked
 * against the schema pack (unknown field, wrong type: INVALID_ARGUMENT, nothing
 * written). Returns the record id; enlace_free. BUSY if `db` is in use. */
ENLACE_API char* enlace_db_put(enlace_db* db, const char* collection, const char* id,
                               const char* fields_json, enlace_error* err) ENLACE_NOEXCEPT;
/* {"collection":..,"id":..,"deleted":false,"fields":{f:value},
 *  "conflicts":[field,...]}; NOT_FOUND when missing or deleted. enlace_free.
 * BUSY if `db` is in use. */
ENLACE_API char* enlace_db_get(enlace_db* db, const char* collection, const char* id,
                               enlace_error* err) ENLACE_NOEXCEPT;
/* A JSON array of records as enlace_db_get gives, sorted by id. */
ENLACE_API char* enlace_db_list(enlace_db* db, const char* collection,
                                enlace_error* err) ENLACE_NOEXCEPT;
/* Tombstones a record (covers what this device has seen). BUSY if in use. */
ENLACE_API int enlace_db_delete(enlace_db* db, const char* collection, const char* id,
                                enlace_error* err) ENLACE_NOEXCEPT;
/* Tombstones and overwrites every field with null; old values are purged. */
ENLACE_API int enlace_db_erase(enlace_db* db, const char* collection, const char* id,
                               enlace_error* err) ENLACE_NOEXCEPT;
/* A JSON array of [{"collection","id","field","shown":value,
 *  "values":[{"value":v,"device":hex}]}]; field "$deleted" for a delete
 * conflict. enlace_free. BUSY if `db` is in use. */
ENLACE_API char* enlace_db_conflicts(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;
/* Resolves a conflict with `value_json` (checked like a put's). BUSY if in use. */
ENLACE_API int enlace_db_resolve(enlace_db* db, const char* collection, const char* id,
                                 const char* field, const char* value_json,
                                 enlace_error* err) ENLACE_NOEXCEPT;

/* ---- sync ------------------------------------------------------------------ */

/* A sync run over `db`. Loop: enlace_sync_next_request, send it, hand the
 * answer to enlace_sync_handle_response, until *more is 0. FAILED_PRECONDITION
 * without a team. Thread-safe as a new handle; BUSY if `db` is in use. */
ENLACE_API enlace_sync* enlace_sync_begin(enlace_db* db, enlace_error* err) ENLACE_NOEXCEPT;
/* The next round's request (push and pull); enlace_request_free. BUSY if the
 * sync or its db is in use; CLOSED when the db was closed. */
ENLACE_API enlace_request* enlace_sync_next_request(enlace_sync* sync,
                                                    enlace_error* err) ENLACE_NOEXCEPT;
/* Applies the answer: `http_status` and body, and the x-enlace-hub-time header
 * (NULL or "" when absent; the device clock follows the hub when off). Sets
 * *more to 1 when another round is needed. A non-200 status is the hub's error
 * (see enlace_hub_check); a bad body changes nothing (CORRUPTION). BUSY/CLOSED
 * as enlace_sync_next_request. */
ENLACE_API int enlace_sync_handle_response(enlace_sync* sync, int http_status, const uint8_t* body,
                                           size_t size, const char* hub_time_header, int* more,
                                           enlace_error* err) ENLACE_NOEXCEPT;
/* {"rounds","sent","received","ignored","refused","restamped","last_refusal",
 * "missing"}; "missing": writes of other devices known to exist that the hub
 * did not deliver when asked (an app should tell its user, as `enlace sync`
 * does with exit 5). enlace_free. BUSY if the sync handle is in use. */
ENLACE_API char* enlace_sync_progress(enlace_sync* sync, enlace_error* err) ENLACE_NOEXCEPT;
/* Releases the sync handle. NULL is fine. Must not race with other calls on it. */
ENLACE_API void enlace_sync_free(enlace_sync* sync) ENLACE_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENLACE_ENLACE_H_ */
