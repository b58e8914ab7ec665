/* cli_internal.h — subcommands implemented outside cli.c (internal to cli).
 * Each takes the arguments after the command name and returns the exit
 * code (0 ok, 1 failed, 2 bad usage or configuration). */
#ifndef NNLO_CLI_INTERNAL_H
#define NNLO_CLI_INTERNAL_H

/* nnlo-c estimate MODEL [--hls4ml-config FILE] [--part P] [--clock-ns NS]
 *   [--strategy latency|resource] [--reuse-factor N] [--precision T] [--json] */
int cmd_estimate(int argc, char **argv);
/* nnlo-c import KERAS.h5 OUT.h5 */
int cmd_import(int argc, char **argv);
/* nnlo-c export MODEL --hls4ml DIR [--part P] [--clock-ns NS] [--strategy S] [--reuse-factor N] */
int cmd_export(int argc, char **argv);

#endif
