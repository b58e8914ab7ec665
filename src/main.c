/* main.c — nnlo-c's entry point; everything happens in src/cli. */
#include "nnlo/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
