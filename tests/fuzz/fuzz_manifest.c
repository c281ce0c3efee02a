/* fuzz_manifest.c - finishing an interrupted compaction: cleaning/COMMIT
 * (core/compaction.c, compaction_recover).
 *
 * File set: 'c' the manifest; 'C' a cleaned file in cleaning/ (u64 base,
 * u8 kind); 'S' a segment file in the partition (u64 base, u8 kind); 'k'
 * the cleaner checkpoint. Whatever the manifest says, recovery only touches
 * files of the partition directory and, when it succeeds, leaves no
 * cleaning/ behind; running it again is a no-op. */
#include <sys/stat.h>

#include "compaction.h"
#include "fuzz_util.h"

static const char *suffix[] = {".log", ".index", ".timeindex"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *root = fuzz_dir(1);
    char dir[1024], cdir[1100], name[64];
    /* The partition lives one level down, so that a manifest naming a file
     * outside it would show up beside it. */
    snprintf(dir, sizeof(dir), "%s/p", root);
    snprintf(cdir, sizeof(cdir), "%s/cleaning", dir);
    mkdir(dir, 0755);
    fuzz_write_file(root, "outside", "x", 1);
    struct fuzz_in in = {data, size};
    uint8_t tag;
    const uint8_t *p;
    size_t len;
    for (int files = 0; fuzz_entry(&in, &tag, &p, &len) && files < 64; files++) {
        struct fuzz_in e = {p, len};
        if (tag == 'c') {
            mkdir(cdir, 0755);
            fuzz_write_file(cdir, "COMMIT", p, len);
        } else if (tag == 'C' || tag == 'S') {
            uint64_t base = fuzz_u64(&e);
            snprintf(name, sizeof(name), "%020llu%s", (unsigned long long)base,
                     suffix[fuzz_u8(&e) % 3]);
            if (tag == 'C')
                mkdir(cdir, 0755);
            fuzz_write_file(tag == 'C' ? cdir : dir, name, e.p, e.n);
        } else if (tag == 'k') {
            fuzz_write_file(dir, "cleaner-checkpoint", p, len);
        }
    }
    int r = compaction_recover(dir);
    struct stat st;
    FUZZ_CHECK(stat(root, &st) == 0);
    char path[1100];
    snprintf(path, sizeof(path), "%s/outside", root);
    FUZZ_CHECK(stat(path, &st) == 0);
    if (r == 0) {
        FUZZ_CHECK(stat(cdir, &st) < 0 && errno == ENOENT);
        FUZZ_CHECK(compaction_recover(dir) == 0);
    }
    return 0;
}
