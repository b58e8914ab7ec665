/* h5write.h — block-wise writer of (X float32 (n, nf), y int32 (n)) files
 * (internal to data). Generators stream rows through it so that converting
 * a data set never holds it twice; data_write_h5 is one call of it.
 * The file is written as path.tmp and renamed by h5w_close. */
#ifndef NNLO_DATA_H5WRITE_H
#define NNLO_DATA_H5WRITE_H

#include <hdf5.h>
#include <stdint.h>
#include "nnlo/util.h"

typedef struct {
    hid_t file, dx, dy;
    long n;
    int nf;
    char path[4096], tmp[4112];
} h5w;

/* Creates path.tmp with datasets `features` (n, nf) float32 and `labels`
 * (n) int32 (chunked, gzip level 1; intermediate groups created). */
nl_status h5w_open(h5w *w, const char *path, long n, int nf, const char *features,
                   const char *labels, nl_error *e);
/* Writes rows [start, start+count): x (count, nf), y (count). */
nl_status h5w_rows(h5w *w, long start, long count, const float *x, const int32_t *y,
                   nl_error *e);
/* Closes and renames to path. On failure the temporary is removed. */
nl_status h5w_close(h5w *w, nl_error *e);
/* Closes and removes the temporary (error paths). Safe after h5w_close. */
void h5w_abort(h5w *w);

#endif
