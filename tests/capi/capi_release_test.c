/* libenlace as a release builds it (without the CMake option
 * ENLACE_TEST_HOOKS): ENLACE_OPEN_TEST_KDF, Argon2id's cheapest cost, is
 * refused with ENLACE_INVALID_ARGUMENT before anything is made, and a device
 * made at the default cost keeps its folder 0700 and its files 0600. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <enlace/enlace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      ++failures;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

static const char kPassphrase[] = "una frase larga de prueba";

int main(void) {
  const char* tmp = getenv("ENLACE_TEST_TMP");
  char base[512];
  if (tmp != NULL && *tmp != '\0') {
    mkdir(tmp, 0700);
    snprintf(base, sizeof base, "%s/capi-release-XXXXXX", tmp);
  } else {
    snprintf(base, sizeof base, "/tmp/enlace-capi-release-XXXXXX");
  }
  if (mkdtemp(base) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  char dir[600];
  snprintf(dir, sizeof dir, "%s/device", base);
  struct stat st;

  enlace_error err = ENLACE_ERROR_INIT;
  CHECK(enlace_db_create(dir, kPassphrase, ENLACE_OPEN_TEST_KDF, &err) == NULL);
  CHECK(err.code == ENLACE_INVALID_ARGUMENT);
  CHECK(err.message != NULL && strstr(err.message, "ENLACE_OPEN_TEST_KDF") != NULL);
  enlace_error_clear(&err);
  CHECK(stat(dir, &st) != 0); /* nothing was made */

  /* The default cost works, and the device's files are its owner's alone. */
  enlace_db* db = enlace_db_create(dir, kPassphrase, ENLACE_OPEN_DEFAULT, &err);
  CHECK(db != NULL);
  if (db == NULL) {
    fprintf(stderr, "enlace_db_create: %s\n", err.message ? err.message : "?");
    return 1;
  }
  CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
  DIR* d = opendir(dir);
  CHECK(d != NULL);
  int files = 0;
  for (struct dirent* e = d ? readdir(d) : NULL; e != NULL; e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    CHECK(stat(path, &st) == 0);
    if ((st.st_mode & 0777) != 0600) {
      ++failures;
      fprintf(stderr, "%s has mode %03o, not 0600\n", path, (unsigned)(st.st_mode & 0777));
    }
    ++files;
  }
  if (d != NULL) closedir(d);
  CHECK(files >= 2); /* vault.bin, store.db */
  enlace_db_free(db);

  /* Opening with the test cost is refused too. */
  CHECK(enlace_db_open(dir, kPassphrase, ENLACE_OPEN_TEST_KDF, &err) == NULL);
  CHECK(err.code == ENLACE_INVALID_ARGUMENT);
  enlace_error_clear(&err);

  if (failures > 0) {
    fprintf(stderr, "capi_release_test: %d checks failed\n", failures);
    return 1;
  }
  printf("capi_release_test: all checks passed\n");
  return 0;
}
