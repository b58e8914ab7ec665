/* io_internal.h — attribute helpers and enum names for model files
 * (internal to io). Strings are written as variable-length UTF-8 so h5py
 * returns str; readers accept fixed-length strings too. Every reader fills
 * e with "<file>: <object>: ..." naming what is missing or mis-typed. */
#ifndef NNLO_IO_INTERNAL_H
#define NNLO_IO_INTERNAL_H

#include <hdf5.h>
#include "nnlo/fixed.h"
#include "nnlo/util.h"

/* Writers: return < 0 on HDF5 failure. */
herr_t mio_put_int(hid_t obj, const char *name, int v);
herr_t mio_put_double(hid_t obj, const char *name, double v);
herr_t mio_put_str(hid_t obj, const char *name, const char *s);

/* Readers. `file` and `where` (e.g. "/layers/001_dense0") name the object
 * in messages. mio_has tells whether an attribute exists. */
int mio_has(hid_t obj, const char *name);
nl_status mio_get_int(hid_t obj, const char *name, int *v, const char *file, const char *where,
                      nl_error *e);
nl_status mio_get_double(hid_t obj, const char *name, double *v, const char *file,
                         const char *where, nl_error *e);
/* *out is malloc'd (caller frees). */
nl_status mio_get_str(hid_t obj, const char *name, char **out, const char *file,
                      const char *where, nl_error *e);

/* "SAT", "WRAP", ... and "RND", "TRN", ... (ap_fixed names without AP_). */
const char *mio_overflow_name(fx_overflow o);
const char *mio_round_name(fx_round r);
int mio_overflow_parse(const char *s, fx_overflow *o); /* 0 on success */
int mio_round_parse(const char *s, fx_round *r);

#endif
