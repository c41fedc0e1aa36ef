/* The C API from plain C, the way an app uses it: its own transport
 * (libcurl here), the real enlace-hub, a whole session of two devices, and the
 * misuse an app can commit (NULL handles, wrong order, bad JSON, values the
 * schema refuses, a closed handle), which must give errors, not crashes. */
#define _POSIX_C_SOURCE 200809L

#include <curl/curl.h>
#include <enlace/enlace.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ENLACE_HUB_BIN
#error "ENLACE_HUB_BIN must name the enlace-hub binary"
#endif

extern char** environ;

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    ++checks;                                                                  \
    if (!(cond)) {                                                             \
      ++failures;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/* Checks that a call failed with `code`, and clears the error. */
#define CHECK_CODE(err, expected)                                             \
  do {                                                                        \
    ++checks;                                                                 \
    if ((err).code != (expected)) {                                           \
      ++failures;                                                             \
      fprintf(stderr, "%s:%d: expected %s, got %s: %s\n", __FILE__, __LINE__, \
              enlace_code_name(expected), enlace_code_name((err).code),       \
              (err).message ? (err).message : "(no message)");                \
    } else if ((expected) != ENLACE_OK && (err).message == NULL) {            \
      ++failures;                                                             \
      fprintf(stderr, "%s:%d: error %s has no message\n", __FILE__, __LINE__, \
              enlace_code_name(expected));                                    \
    }                                                                         \
    enlace_error_clear(&(err));                                               \
  } while (0)

/* Aborts the test: the session cannot go on. */
#define REQUIRE(cond)                                                            \
  do {                                                                           \
    ++checks;                                                                    \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
      finish(1);                                                                 \
    }                                                                            \
  } while (0)

static pid_t hub_pid = -1;
static char hub_url[256];
static char base_dir[512];

static void finish(int failed) {
  if (hub_pid > 0) {
    kill(hub_pid, SIGTERM);
    waitpid(hub_pid, NULL, 0);
    hub_pid = -1;
  }
  if (failed || failures > 0) {
    fprintf(stderr, "capi_test: %d of %d checks failed%s\n", failures, checks,
            failed ? " (aborted)" : "");
    exit(1);
  }
  printf("capi_test: %d checks passed\n", checks);
  exit(0);
}

static void path_join(char* out, size_t n, const char* dir, const char* name) {
  snprintf(out, n, "%s/%s", dir, name);
}

static void make_base_dir(void) {
  const char* tmp = getenv("ENLACE_TEST_TMP");
  char templ[512];
  if (tmp != NULL && *tmp != '\0') {
    mkdir(tmp, 0700);
    snprintf(templ, sizeof templ, "%s/capi-XXXXXX", tmp);
  } else {
    snprintf(templ, sizeof templ, "/tmp/enlace-capi-XXXXXX");
  }
  REQUIRE(mkdtemp(templ) != NULL);
  snprintf(base_dir, sizeof base_dir, "%s", templ);
}

/* ---- the hub ---------------------------------------------------------------- */

static void start_hub(void) {
  char data[600], out_path[600], log_path[600];
  path_join(data, sizeof data, base_dir, "hub");
  path_join(out_path, sizeof out_path, base_dir, "hub.out");
  path_join(log_path, sizeof log_path, base_dir, "hub.log");
  char* argv[] = {(char*)ENLACE_HUB_BIN,
                  (char*)"serve",
                  (char*)"--data",
                  data,
                  (char*)"--listen",
                  (char*)"127.0.0.1:0",
                  NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int rc = posix_spawn(&hub_pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  /* Wait for the one "listening on URL" line (up to 20 s; not an assertion). */
  for (int i = 0; i < 1000; ++i) {
    FILE* f = fopen(out_path, "r");
    char line[512] = {0};
    if (f != NULL) {
      if (fgets(line, sizeof line, f) == NULL) line[0] = '\0';
      fclose(f);
    }
    const char* at = strstr(line, "listening on ");
    if (at != NULL && strchr(line, '\n') != NULL) {
      if (sscanf(at + strlen("listening on "), "%255s", hub_url) == 1) return;
    }
    int status = 0;
    if (waitpid(hub_pid, &status, WNOHANG) == hub_pid) {
      hub_pid = -1;
      fprintf(stderr, "the hub exited; see %s\n", log_path);
      finish(1);
    }
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "the hub did not start; see %s\n", log_path);
  finish(1);
}

static void bootstrap_token(char* out, size_t n) {
  char data[600], cmd[1400];
  path_join(data, sizeof data, base_dir, "hub");
  snprintf(cmd, sizeof cmd, "'%s' admin bootstrap-token --data '%s'", ENLACE_HUB_BIN, data);
  FILE* p = popen(cmd, "r");
  REQUIRE(p != NULL);
  out[0] = '\0';
  if (fgets(out, (int)n, p) == NULL) out[0] = '\0';
  REQUIRE(pclose(p) == 0);
  out[strcspn(out, "\r\n")] = '\0';
  REQUIRE(strlen(out) > 0);
}

/* ---- HTTP with libcurl, as an app's transport -------------------------------- */

typedef struct {
  long status;
  unsigned char* body;
  size_t size;
  char hub_time[64];
} response;

static size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  response* r = (response*)user;
  const size_t n = size * nmemb;
  unsigned char* grown = (unsigned char*)realloc(r->body, r->size + n + 1);
  if (grown == NULL) return 0;
  r->body = grown;
  memcpy(r->body + r->size, data, n);
  r->size += n;
  r->body[r->size] = '\0';
  return n;
}

static size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  response* r = (response*)user;
  const size_t n = size * nmemb;
  static const char name[] = "x-enlace-hub-time:";
  if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
    const char* v = data + sizeof name - 1;
    while (*v == ' ') ++v;
    size_t len = strcspn(v, "\r\n");
    if (len >= sizeof r->hub_time) len = sizeof r->hub_time - 1;
    memcpy(r->hub_time, v, len);
    r->hub_time[len] = '\0';
  }
  return n;
}

static void response_free(response* r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* Sends `req` to `base` + its path; the whole answer lands in `out`. */
static void send_request(const char* base, const enlace_request* req, response* out) {
  memset(out, 0, sizeof *out);
  CURL* curl = curl_easy_init();
  REQUIRE(curl != NULL);
  char url[1024];
  snprintf(url, sizeof url, "%s%s", base, enlace_request_path(req));
  struct curl_slist* headers = NULL;
  for (size_t i = 0; i < enlace_request_header_count(req); ++i) {
    char line[2048];
    snprintf(line, sizeof line, "%s: %s", enlace_request_header_name(req, i),
             enlace_request_header_value(req, i));
    headers = curl_slist_append(headers, line);
  }
  headers = curl_slist_append(headers, "Expect:");
  size_t body_size = 0;
  const uint8_t* body = enlace_request_body(req, &body_size);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, enlace_request_method(req));
  if (strcmp(enlace_request_method(req), "GET") != 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_size > 0 ? (const char*)body : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, out);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
  REQUIRE(rc == CURLE_OK);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
}

/* ---- helpers over the API --------------------------------------------------- */

static void ok_or_die(int rc, enlace_error* err, const char* what) {
  if (rc != ENLACE_OK) {
    fprintf(stderr, "%s failed: %s: %s\n", what, enlace_code_name(err->code),
            err->message ? err->message : "(no message)");
    enlace_error_clear(err);
    finish(1);
  }
}

/* The whole sync loop an app runs; returns the number of rounds. */
static int sync_db(enlace_db* db) {
  enlace_error err = ENLACE_ERROR_INIT;
  enlace_sync* sync = enlace_sync_begin(db, &err);
  ok_or_die(sync == NULL ? err.code : ENLACE_OK, &err, "enlace_sync_begin");
  int rounds = 0;
  int more = 1;
  while (more && rounds < 100) {
    enlace_request* req = enlace_sync_next_request(sync, &err);
    ok_or_die(req == NULL ? err.code : ENLACE_OK, &err, "enlace_sync_next_request");
    response resp;
    send_request(hub_url, req, &resp);
    enlace_request_free(req);
    const int rc = enlace_sync_handle_response(sync, (int)resp.status, resp.body, resp.size,
                                               resp.hub_time, &more, &err);
    response_free(&resp);
    ok_or_die(rc, &err, "enlace_sync_handle_response");
    ++rounds;
  }
  CHECK(!more);
  char* progress = enlace_sync_progress(sync, &err);
  CHECK(progress != NULL && strstr(progress, "\"rounds\"") != NULL);
  CHECK(progress != NULL && strstr(progress, "\"missing\":0") != NULL);
  enlace_free(progress);
  enlace_sync_free(sync);
  return rounds;
}

static enlace_db* new_db(const char* name, const char* passphrase) {
  char dir[600];
  path_join(dir, sizeof dir, base_dir, name);
  enlace_error err = ENLACE_ERROR_INIT;
  enlace_db* db = enlace_db_create(dir, passphrase, ENLACE_OPEN_TEST_KDF, &err);
  ok_or_die(db == NULL ? err.code : ENLACE_OK, &err, "enlace_db_create");
  CHECK(err.code == ENLACE_OK && err.message == NULL); /* untouched on success */
  return db;
}

static const char kEncounter[] =
    "{\"enc_Date\":\"2026-11-29\",\"enc_Kind\":\"Street\",\"enc_PeopleReached\":3}";

/* ---- two threads on one handle ------------------------------------------------ */

typedef struct {
  enlace_db* db;
  int ok;
  int busy;
  int other;
} worker;

static void* put_many(void* arg) {
  worker* w = (worker*)arg;
  for (int i = 0; i < 40; ++i) {
    enlace_error err = ENLACE_ERROR_INIT;
    char* id = enlace_db_put(w->db, "encounters", NULL, kEncounter, &err);
    if (id != NULL) {
      ++w->ok;
      enlace_free(id);
    } else if (err.code == ENLACE_BUSY) {
      ++w->busy;
    } else {
      ++w->other;
    }
    enlace_error_clear(&err);
    char* status = enlace_db_status(w->db, &err);
    if (status == NULL && err.code != ENLACE_BUSY) ++w->other;
    enlace_free(status);
    enlace_error_clear(&err);
  }
  return NULL;
}

static size_t count_records(enlace_db* db) {
  enlace_error err = ENLACE_ERROR_INIT;
  char* list = enlace_db_list(db, "encounters", &err);
  REQUIRE(list != NULL);
  size_t n = 0;
  for (const char* p = list; (p = strstr(p, "\"collection\"")) != NULL; ++p) ++n;
  enlace_free(list);
  return n;
}

/* Each call either runs or is refused with BUSY; none is lost or doubled. No
 * assertion on how often BUSY happens (that depends on scheduling). */
static void test_two_threads(enlace_db* db) {
  const size_t before = count_records(db);
  worker w[2] = {{db, 0, 0, 0}, {db, 0, 0, 0}};
  pthread_t t[2];
  REQUIRE(pthread_create(&t[0], NULL, put_many, &w[0]) == 0);
  REQUIRE(pthread_create(&t[1], NULL, put_many, &w[1]) == 0);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  CHECK(w[0].other == 0 && w[1].other == 0);
  CHECK(w[0].ok + w[0].busy == 40 && w[1].ok + w[1].busy == 40);
  CHECK(count_records(db) == before + (size_t)(w[0].ok + w[1].ok));
  printf("two threads: %d puts done, %d refused as busy\n", w[0].ok + w[1].ok,
         w[0].busy + w[1].busy);
}

/* ---- the tests ------------------------------------------------------------------ */

static void test_library(void) {
  enlace_error err = ENLACE_ERROR_INIT;
  CHECK(enlace_init(&err) == ENLACE_OK);
  CHECK(enlace_init(NULL) == ENLACE_OK);
  CHECK(enlace_version() != NULL && strlen(enlace_version()) > 0);
  CHECK(enlace_protocol_version() >= 1);
  CHECK(enlace_key_size() == 32);
  CHECK(enlace_error_size() == sizeof(enlace_error));
  CHECK(strcmp(enlace_code_name(ENLACE_BUSY), "busy") == 0);
  CHECK(strcmp(enlace_code_name(ENLACE_CLOSED), "closed") == 0);
  CHECK(strcmp(enlace_code_name(12345), "unknown") == 0);
  enlace_free(NULL);
  enlace_error_clear(NULL);
  enlace_db_free(NULL);
  enlace_sync_free(NULL);
  enlace_request_free(NULL);
}

static void test_null_handles(void) {
  enlace_error err = ENLACE_ERROR_INIT;
  char* s = NULL;
  CHECK(enlace_db_create(NULL, "p", 0, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_open("/nonexistent/x", NULL, 0, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_create_with_key("/tmp/x", NULL, 32, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_put(NULL, "encounters", NULL, kEncounter, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_get(NULL, "encounters", "00", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_list(NULL, "encounters", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_delete(NULL, "encounters", "00", &err) == ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_erase(NULL, "encounters", "00", &err) == ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_conflicts(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_resolve(NULL, "c", "i", "f", "1", &err) == ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_status(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_change_passphrase(NULL, "a", "b", &err) == ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_close(NULL, &err) == ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_wipe(NULL, &err) == ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_sync_begin(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_sync_next_request(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  int more = 7;
  CHECK(enlace_sync_handle_response(NULL, 200, NULL, 0, NULL, &more, &err) ==
        ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_sync_progress(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_join_request(NULL, "code", "name", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_register_team_request(NULL, "t", "d", "tok", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_invite_hub_url(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_request_method(NULL) == NULL);
  CHECK(enlace_request_path(NULL) == NULL);
  CHECK(enlace_request_header_count(NULL) == 0);
  CHECK(enlace_request_header_name(NULL, 0) == NULL);
  size_t n = 99;
  CHECK(enlace_request_body(NULL, &n) == NULL && n == 0);
  /* With no error out-parameter, still an error code and no crash. */
  CHECK(enlace_db_delete(NULL, NULL, NULL, NULL) == ENLACE_INVALID_ARGUMENT);
  s = enlace_db_device_id(NULL, NULL);
  CHECK(s == NULL);
  /* A message left in `err` is freed when overwritten (ASan sees leaks). */
  CHECK(enlace_db_status(NULL, &err) == NULL);
  CHECK(enlace_db_status(NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_hub_check(200, NULL, 0, &err) == ENLACE_OK);
  CHECK(enlace_hub_check(403, (const uint8_t*)"no", 2, &err) == ENLACE_PERMISSION_DENIED);
  CHECK_CODE(err, ENLACE_PERMISSION_DENIED);
}

/* Device A creates the team, captures, syncs; B joins with an invite and
 * sees the record; then a conflict, deletes, passphrases and misuse. */
static void test_session(void) {
  enlace_error err = ENLACE_ERROR_INIT;
  enlace_db* a = new_db("a", "passphrase of A");

  /* Wrong order: no team yet. */
  CHECK(enlace_sync_begin(a, &err) == NULL);
  CHECK_CODE(err, ENLACE_FAILED_PRECONDITION);
  char* team = enlace_db_team_id(a, &err);
  CHECK(team != NULL && team[0] == '\0');
  enlace_free(team);

  /* Register the team with a bootstrap token. */
  char token[256];
  bootstrap_token(token, sizeof token);
  enlace_request* req = enlace_db_register_team_request(a, "Equipo Norte", "phone A", token, &err);
  ok_or_die(req == NULL ? err.code : ENLACE_OK, &err, "register_team_request");
  CHECK(strcmp(enlace_request_method(req), "POST") == 0);
  response resp;
  send_request(hub_url, req, &resp);
  enlace_request_free(req);
  ok_or_die(enlace_db_register_team_response(a, (int)resp.status, resp.body, resp.size, &err), &err,
            "register_team_response");
  response_free(&resp);
  team = enlace_db_team_id(a, &err);
  CHECK(team != NULL && strlen(team) == 32);
  enlace_free(team);

  /* A made-up token: the hub's refusal is an error with its reason. */
  {
    enlace_db* c = new_db("c", "passphrase of C");
    req = enlace_db_register_team_request(c, "Otro", "phone C", "not-a-token", &err);
    ok_or_die(req == NULL ? err.code : ENLACE_OK, &err, "register_team_request C");
    send_request(hub_url, req, &resp);
    enlace_request_free(req);
    CHECK(resp.status != 200);
    CHECK(enlace_db_register_team_response(c, (int)resp.status, resp.body, resp.size, &err) !=
          ENLACE_OK);
    CHECK(err.code != ENLACE_OK && err.message != NULL && strlen(err.message) > 0);
    enlace_error_clear(&err);
    response_free(&resp);
    enlace_db_free(c);
  }

  /* Capture: valid, invalid JSON, unknown field, wrong type. */
  char* id = enlace_db_put(a, "encounters", NULL, kEncounter, &err);
  ok_or_die(id == NULL ? err.code : ENLACE_OK, &err, "enlace_db_put");
  CHECK(strlen(id) == 32);
  CHECK(enlace_db_put(a, "encounters", NULL, "{\"enc_Kind\": ", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_put(a, "encounters", NULL, "[1,2]", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_put(a, "encounters", NULL,
                      "{\"enc_Date\":\"2026-11-29\",\"enc_Kind\":\"Street\",\"enc_Nonsense\":1}",
                      &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_put(a, "encounters", NULL,
                      "{\"enc_Date\":\"2026-11-29\",\"enc_Kind\":\"Street\","
                      "\"enc_PeopleReached\":\"many\"}",
                      &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_put(a, "encounters", "not-an-id", kEncounter, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_get(a, "encounters", "zz", &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  char* list = enlace_db_list(a, "encounters", &err);
  CHECK(list != NULL && strstr(list, id) != NULL && strstr(list, "\"Street\"") != NULL);
  enlace_free(list);

  char* status = enlace_db_status(a, &err);
  CHECK(status != NULL && strstr(status, "\"pending_writes\":0") == NULL);
  enlace_free(status);

  /* Sync A, then nothing is left to send. */
  CHECK(sync_db(a) >= 1);
  status = enlace_db_status(a, &err);
  CHECK(status != NULL && strstr(status, "\"pending_writes\":0") != NULL);
  CHECK(status != NULL && strstr(status, "\"last_sync_ms\":0") == NULL);
  enlace_free(status);

  /* Invite B. */
  char* code = NULL;
  CHECK(enlace_db_invite_request(a, hub_url, "", 99, 3600000, &code, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  CHECK(enlace_db_invite_request(a, hub_url, "", ENLACE_ROLE_FIELD, 3600000, NULL, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  req = enlace_db_invite_request(a, hub_url, NULL, ENLACE_ROLE_FIELD, 3600000, &code, &err);
  ok_or_die(req == NULL ? err.code : ENLACE_OK, &err, "invite_request");
  send_request(hub_url, req, &resp);
  enlace_request_free(req);
  ok_or_die(enlace_hub_check((int)resp.status, resp.body, resp.size, &err), &err, "invite");
  response_free(&resp);

  /* B joins with the code, at the hub the code names. */
  enlace_db* b = new_db("b", "passphrase of B");
  char* url = enlace_invite_hub_url(code, &err);
  ok_or_die(url == NULL ? err.code : ENLACE_OK, &err, "enlace_invite_hub_url");
  CHECK(strcmp(url, hub_url) == 0);
  CHECK(enlace_invite_hub_url("garbage", &err) == NULL);
  CHECK(err.code != ENLACE_OK);
  enlace_error_clear(&err);
  req = enlace_db_join_request(b, code, "phone B", &err);
  ok_or_die(req == NULL ? err.code : ENLACE_OK, &err, "join_request");
  send_request(url, req, &resp);
  enlace_request_free(req);
  ok_or_die(enlace_db_join_response(b, code, (int)resp.status, resp.body, resp.size, &err), &err,
            "join_response");
  response_free(&resp);
  enlace_free(url);
  enlace_free(code);

  /* B syncs and sees A's record. */
  CHECK(sync_db(b) >= 1);
  char* rec = enlace_db_get(b, "encounters", id, &err);
  ok_or_die(rec == NULL ? err.code : ENLACE_OK, &err, "enlace_db_get on B");
  CHECK(strstr(rec, "\"enc_Kind\":\"Street\"") != NULL);
  CHECK(strstr(rec, "\"enc_PeopleReached\":3") != NULL);
  CHECK(strstr(rec, "\"conflicts\":[]") != NULL);
  enlace_free(rec);

  /* Concurrent edits of one field: a conflict on both, resolved on B. */
  char* same = enlace_db_put(a, "encounters", id, "{\"enc_PeopleReached\":4}", &err);
  CHECK(same != NULL && strcmp(same, id) == 0);
  enlace_free(same);
  same = enlace_db_put(b, "encounters", id, "{\"enc_PeopleReached\":5}", &err);
  CHECK(same != NULL && strcmp(same, id) == 0);
  enlace_free(same);
  sync_db(a);
  sync_db(b);
  char* conflicts = enlace_db_conflicts(b, &err);
  CHECK(conflicts != NULL && strstr(conflicts, "\"field\":\"enc_PeopleReached\"") != NULL);
  enlace_free(conflicts);
  CHECK(enlace_db_resolve(b, "encounters", id, "enc_PeopleReached", "\"lots\"", &err) ==
        ENLACE_INVALID_ARGUMENT);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  ok_or_die(enlace_db_resolve(b, "encounters", id, "enc_PeopleReached", "9", &err), &err,
            "resolve");
  conflicts = enlace_db_conflicts(b, &err);
  CHECK(conflicts != NULL && strcmp(conflicts, "[]") == 0);
  enlace_free(conflicts);
  sync_db(b);
  sync_db(a);
  rec = enlace_db_get(a, "encounters", id, &err);
  CHECK(rec != NULL && strstr(rec, "\"enc_PeopleReached\":9") != NULL);
  enlace_free(rec);

  /* Delete on A: gone there, and on B after a sync; erase another. */
  ok_or_die(enlace_db_delete(a, "encounters", id, &err), &err, "delete");
  CHECK(enlace_db_get(a, "encounters", id, &err) == NULL);
  CHECK_CODE(err, ENLACE_NOT_FOUND);
  sync_db(a);
  sync_db(b);
  CHECK(enlace_db_get(b, "encounters", id, &err) == NULL);
  CHECK_CODE(err, ENLACE_NOT_FOUND);
  char* id2 = enlace_db_put(b, "encounters", NULL, kEncounter, &err);
  CHECK(id2 != NULL);
  CHECK(enlace_db_erase(b, "encounters", id2, &err) == ENLACE_OK);
  CHECK(enlace_db_get(b, "encounters", id2, &err) == NULL);
  CHECK_CODE(err, ENLACE_NOT_FOUND);
  enlace_free(id2);

  test_two_threads(a);
  CHECK(sync_db(a) >= 1);

  /* Passphrase change: the old one no longer opens A. */
  CHECK(enlace_db_change_passphrase(a, "wrong", "new", &err) == ENLACE_WRONG_PASSPHRASE);
  CHECK_CODE(err, ENLACE_WRONG_PASSPHRASE);
  ok_or_die(enlace_db_change_passphrase(a, "passphrase of A", "new passphrase of A", &err), &err,
            "change_passphrase");
  enlace_sync* kept = enlace_sync_begin(a, &err);
  CHECK(kept != NULL);

  /* Closed handle: every call says CLOSED, nothing crashes. */
  CHECK(enlace_db_close(a, &err) == ENLACE_OK);
  CHECK(enlace_db_close(a, &err) == ENLACE_OK);
  CHECK(enlace_db_put(a, "encounters", NULL, kEncounter, &err) == NULL);
  CHECK_CODE(err, ENLACE_CLOSED);
  CHECK(enlace_db_status(a, &err) == NULL);
  CHECK_CODE(err, ENLACE_CLOSED);
  CHECK(enlace_sync_begin(a, &err) == NULL);
  CHECK_CODE(err, ENLACE_CLOSED);
  CHECK(enlace_sync_next_request(kept, &err) == NULL);
  CHECK_CODE(err, ENLACE_CLOSED);
  enlace_sync_free(kept);
  enlace_db_free(a);

  char dir_a[600];
  path_join(dir_a, sizeof dir_a, base_dir, "a");
  CHECK(enlace_db_open(dir_a, "passphrase of A", ENLACE_OPEN_TEST_KDF, &err) == NULL);
  CHECK_CODE(err, ENLACE_WRONG_PASSPHRASE);
  a = enlace_db_open(dir_a, "new passphrase of A", ENLACE_OPEN_TEST_KDF, &err);
  CHECK(a != NULL);
  enlace_error_clear(&err);
  CHECK(enlace_db_create(dir_a, "x", ENLACE_OPEN_TEST_KDF, &err) == NULL);
  CHECK_CODE(err, ENLACE_ALREADY_EXISTS);

  /* Wipe B: its files are gone and the handle is dead. */
  char dir_b[600], vault_b[700];
  path_join(dir_b, sizeof dir_b, base_dir, "b");
  path_join(vault_b, sizeof vault_b, dir_b, "vault.bin");
  CHECK(access(vault_b, F_OK) == 0);
  ok_or_die(enlace_db_wipe(b, &err), &err, "wipe");
  CHECK(access(vault_b, F_OK) != 0);
  CHECK(enlace_db_list(b, "encounters", &err) == NULL);
  CHECK_CODE(err, ENLACE_CLOSED);
  enlace_db_free(b);
  CHECK(enlace_db_open(dir_b, "passphrase of B", ENLACE_OPEN_TEST_KDF, &err) == NULL);
  CHECK_CODE(err, ENLACE_NOT_FOUND);

  enlace_free(id);
  enlace_db_free(a);
}

static void test_raw_key(void) {
  enlace_error err = ENLACE_ERROR_INIT;
  char dir[600];
  path_join(dir, sizeof dir, base_dir, "keyed");
  uint8_t key[32], other[32];
  for (int i = 0; i < 32; ++i) {
    key[i] = (uint8_t)(i * 7 + 1);
    other[i] = (uint8_t)(i * 7 + 2);
  }
  CHECK(enlace_db_create_with_key(dir, key, 16, &err) == NULL);
  CHECK_CODE(err, ENLACE_INVALID_ARGUMENT);
  enlace_db* db = enlace_db_create_with_key(dir, key, sizeof key, &err);
  ok_or_die(db == NULL ? err.code : ENLACE_OK, &err, "create_with_key");
  CHECK(enlace_db_change_passphrase(db, "a", "b", &err) == ENLACE_FAILED_PRECONDITION);
  CHECK_CODE(err, ENLACE_FAILED_PRECONDITION);
  enlace_db_free(db);
  CHECK(enlace_db_open_with_key(dir, other, sizeof other, &err) == NULL);
  CHECK_CODE(err, ENLACE_WRONG_PASSPHRASE);
  db = enlace_db_open_with_key(dir, key, sizeof key, &err);
  CHECK(db != NULL);
  enlace_error_clear(&err);
  enlace_db_free(db);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  make_base_dir();
  test_library();
  test_null_handles();
  test_raw_key();
  start_hub();
  test_session();
  curl_global_cleanup();
  finish(0);
  return 0;
}
