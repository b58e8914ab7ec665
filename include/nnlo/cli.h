/* cli.h — the command line: subcommands, options, exit codes.
 * Exit codes: 0 success (a drained scan included), 1 the run failed,
 * 2 bad usage or configuration. Only this layer and main() exit. */
#ifndef NNLO_CLI_H
#define NNLO_CLI_H

#define NNLO_VERSION "0.1.0"

int cli_main(int argc, char **argv);

#endif
