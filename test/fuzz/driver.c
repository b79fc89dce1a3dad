/* Runs a fuzz target over files and directories of inputs without
 * libFuzzer: the seed corpus becomes a regression test in every build,
 * including gcc and sanitizer builds. Exit 0 when every input passed (a
 * failing input aborts). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  if (!f) return perror(path), 1;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) return fclose(f), free(buf), 1;
  fclose(f);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  int i, count = 0, bad = 0;
  for (i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) return perror(argv[i]), 2;
    if (S_ISDIR(st.st_mode)) {
      DIR *d = opendir(argv[i]);
      struct dirent *e;
      while (d && (e = readdir(d))) {
        char p[4096];
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
        bad += run_file(p);
        count++;
      }
      if (d) closedir(d);
    } else {
      bad += run_file(argv[i]);
      count++;
    }
  }
  printf("%d inputs run, %d unreadable\n", count, bad);
  return (bad || count == 0) ? 1 : 0;
}
