/* attr.c — scalar HDF5 attributes for model files: ints, doubles and
 * variable-length UTF-8 strings, plus the names of fixed-point modes.
 * Readers convert any numeric attribute type and check that the attribute
 * holds one value; they never print. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "io/io_internal.h"

static herr_t put(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, mtype, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return r;
}

herr_t mio_put_int(hid_t obj, const char *name, int v) {
    return put(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v);
}

herr_t mio_put_double(hid_t obj, const char *name, double v) {
    return put(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

herr_t mio_put_str(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const char *p = s ? s : "";
    herr_t r = put(obj, name, t, t, &p);
    H5Tclose(t);
    return r;
}

int mio_has(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

/* Opens a one-value attribute; fills e when missing or not scalar. */
static hid_t open_one(hid_t obj, const char *name, const char *file, const char *where,
                      nl_error *e) {
    if (H5Aexists(obj, name) <= 0) {
        nl_err(e, NL_ERR_DATA, "%s: %s lacks the attribute '%s'", file, where, name);
        return H5I_INVALID_HID;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        nl_err(e, NL_ERR_DATA, "%s: %s: cannot open the attribute '%s'", file, where, name);
        return a;
    }
    hid_t s = H5Aget_space(a);
    hssize_t np = H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    if (np != 1) {
        H5Aclose(a);
        nl_err(e, NL_ERR_DATA, "%s: %s: attribute '%s' holds %lld values, expected one", file,
               where, name, (long long)np);
        return H5I_INVALID_HID;
    }
    return a;
}

static nl_status get_num(hid_t obj, const char *name, hid_t mtype, void *v, const char *file,
                         const char *where, nl_error *e) {
    hid_t a = open_one(obj, name, file, where, e);
    if (a < 0) return NL_ERR_DATA;
    hid_t t = H5Aget_type(a);
    H5T_class_t c = H5Tget_class(t);
    H5Tclose(t);
    herr_t r = (c == H5T_INTEGER || c == H5T_FLOAT) ? H5Aread(a, mtype, v) : -1;
    H5Aclose(a);
    if (r < 0)
        return nl_err(e, NL_ERR_DATA, "%s: %s: attribute '%s' is not a number", file, where, name);
    return NL_OK;
}

nl_status mio_get_int(hid_t obj, const char *name, int *v, const char *file, const char *where,
                      nl_error *e) {
    double d;
    nl_status st = get_num(obj, name, H5T_NATIVE_DOUBLE, &d, file, where, e);
    if (st) return st;
    if (d != (double)(int)d)
        return nl_err(e, NL_ERR_DATA, "%s: %s: attribute '%s' is %g, expected an integer", file,
                      where, name, d);
    *v = (int)d;
    return NL_OK;
}

nl_status mio_get_double(hid_t obj, const char *name, double *v, const char *file,
                         const char *where, nl_error *e) {
    return get_num(obj, name, H5T_NATIVE_DOUBLE, v, file, where, e);
}

nl_status mio_get_str(hid_t obj, const char *name, char **out, const char *file,
                      const char *where, nl_error *e) {
    *out = NULL;
    hid_t a = open_one(obj, name, file, where, e);
    if (a < 0) return NL_ERR_DATA;
    hid_t ft = H5Aget_type(a);
    nl_status st = NL_OK;
    if (H5Tget_class(ft) != H5T_STRING) {
        st = nl_err(e, NL_ERR_DATA, "%s: %s: attribute '%s' is not a string", file, where, name);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *p = NULL;
        if (H5Aread(a, mt, &p) < 0) {
            st = nl_err(e, NL_ERR_DATA, "%s: %s: cannot read the attribute '%s'", file, where, name);
        } else {
            *out = str_dup(p ? p : "");
            if (p) H5free_memory(p);
            if (!*out) st = nl_err(e, NL_ERR_NOMEM, "out of memory");
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(ft);
        char *buf = malloc(n + 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1); /* NULLTERM needs room for all n chars + NUL (h5py writes NULLPAD) */
        if (!buf) {
            st = nl_err(e, NL_ERR_NOMEM, "out of memory");
        } else if (H5Aread(a, mt, buf) < 0) {
            st = nl_err(e, NL_ERR_DATA, "%s: %s: cannot read the attribute '%s'", file, where, name);
            free(buf);
        } else {
            buf[n] = '\0';
            *out = buf;
        }
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return st;
}

static const char *const ovf_names[] = {"SAT", "SAT_SYM", "WRAP", "WRAP_SM"};
static const char *const rnd_names[] = {"RND", "TRN", "RND_CONV", "RND_ZERO",
                                        "RND_MIN_INF", "RND_INF", "TRN_ZERO"};

const char *mio_overflow_name(fx_overflow o) {
    return (unsigned)o < sizeof ovf_names / sizeof *ovf_names ? ovf_names[o] : "?";
}

const char *mio_round_name(fx_round r) {
    return (unsigned)r < sizeof rnd_names / sizeof *rnd_names ? rnd_names[r] : "?";
}

/* Accepts "SAT" and "AP_SAT", any case. */
static int parse_name(const char *s, const char *const *names, int n) {
    if (!strncmp(s, "AP_", 3) || !strncmp(s, "ap_", 3)) s += 3;
    for (int i = 0; i < n; i++)
        if (!strcasecmp(s, names[i])) return i;
    return -1;
}

int mio_overflow_parse(const char *s, fx_overflow *o) {
    int i = parse_name(s, ovf_names, (int)(sizeof ovf_names / sizeof *ovf_names));
    if (i < 0) return -1;
    *o = (fx_overflow)i;
    return 0;
}

int mio_round_parse(const char *s, fx_round *r) {
    int i = parse_name(s, rnd_names, (int)(sizeof rnd_names / sizeof *rnd_names));
    if (i < 0) return -1;
    *r = (fx_round)i;
    return 0;
}
