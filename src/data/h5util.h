/* h5util.h — small HDF5 helpers shared by data and io (internal header).
 *
 * Silences HDF5's own error printing, turns the HDF5 error stack into one
 * line for our messages, lists the datasets of a file (for "dataset not
 * found" messages) and commits a file written under a temporary name.
 * No allocation that outlives a call; no global state of our own. */
#ifndef NNLO_DATA_H5UTIL_H
#define NNLO_DATA_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include "nnlo/util.h"

/* Turns off HDF5's automatic error printing (we report errors ourselves). */
void h5u_quiet(void);
/* The innermost message on HDF5's error stack ("" if none) into buf. */
void h5u_errstr(char *buf, size_t len);
/* Comma-separated paths of every dataset in the file (recursive), at most
 * len-1 characters ("..." when cut); "none" for a file without datasets.
 * Returns the number of datasets; if near is not NULL it receives the
 * dataset name closest to `near_to` by edit distance (or ""). */
int h5u_list_datasets(hid_t file, char *buf, size_t len, const char *near_to, char *near,
                      size_t near_len);
/* "path.tmp" into buf; returns NL_OK or fills e if the path is too long. */
nl_status h5u_tmpname(char *buf, size_t len, const char *path, nl_error *e);
/* fsyncs tmp and renames it over path (after the HDF5 file was closed). */
nl_status h5u_commit(const char *tmp, const char *path, nl_error *e);
/* Human name of a dataset's class: "float", "integer", "string", ... */
const char *h5u_class_name(H5T_class_t c);

#endif
