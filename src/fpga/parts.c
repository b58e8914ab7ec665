/* parts.c — the FPGA part table: capacities from AMD/Xilinx data sheets and
 * the per-family constants the estimator needs (DSP operand widths, delays).
 * It does not know any part hls4ml cannot target; adding one is one row
 * here (DESIGN.md "Extending"). Invariant: fpga_part_table and
 * fpga_part_family have the same length and order. */
#include <stddef.h>
#include <strings.h>

#include "fpga/fpga_internal.h"

/* Capacities: CLB LUTs, CLB flip-flops, DSP slices, 18 Kb block RAMs
 * (= 2 x the data sheet's 36 Kb block RAM count). Sources:
 *   DS890 (UltraScale Architecture and Product Overview), tables for Kintex
 *     UltraScale, Virtex UltraScale+: KU115, VU9P, VU13P;
 *   DS962 (Alveo U250: same die as VU13P), DS965 (U50), DS963 (U280);
 *   DS891 (Zynq UltraScale+ MPSoC): ZU7EV, ZU9EG;
 *   DS190 (Zynq-7000): Z-7020; DS180 (7 Series): XC7VX690T.
 * The U250/VU13P row matches the "Available" line of hls4ml's own
 * synthesis baselines (test/pytest/baselines: 1728000 LUT, 3456000 FF,
 * 12288 DSP, 5376 BRAM_18K). */
const fpga_part fpga_part_table[] = {
    {"xcu250-figd2104-2L-e", 1728000, 3456000, 12288, 5376},  /* Alveo U250 */
    {"xcvu13p-flga2577-2-e", 1728000, 3456000, 12288, 5376},  /* hls4ml's default part */
    {"xcvu9p-flga2104-2L-e", 1182240, 2364480, 6840, 4320},
    {"xcvu9p-flgb2104-2-e", 1182240, 2364480, 6840, 4320},    /* hls4ml CI's VU9P package */
    {"xcku115-flvb2104-2-e", 663360, 1326720, 5520, 4320},
    {"xczu9eg-ffvb1156-2-e", 274080, 548160, 2520, 1824},     /* ZCU102 */
    {"xczu7ev-ffvc1156-2-e", 230400, 460800, 1728, 624},      /* ZCU104 */
    {"xc7z020clg400-1", 53200, 106400, 220, 280},             /* PYNQ-Z2 */
    {"xc7vx690tffg1927-2", 433200, 866400, 3600, 2940},
    {"xcu50-fsvh2104-2-e", 872000, 1743000, 5952, 2688},      /* Alveo U50 */
    {"xcu280-fsvh2892-2L-e", 1304000, 2607000, 9024, 4032},   /* Alveo U280 */
};

/* Family of each row above (same order). */
static const fpga_family_id part_family[] = {
    FPGA_FAM_USPLUS, FPGA_FAM_USPLUS, FPGA_FAM_USPLUS, FPGA_FAM_USPLUS,
    FPGA_FAM_ULTRASCALE, FPGA_FAM_USPLUS, FPGA_FAM_USPLUS, FPGA_FAM_7SERIES,
    FPGA_FAM_7SERIES, FPGA_FAM_USPLUS, FPGA_FAM_USPLUS,
};

#define N_PARTS ((int)(sizeof fpga_part_table / sizeof fpga_part_table[0]))
_Static_assert(sizeof part_family / sizeof part_family[0] ==
                   sizeof fpga_part_table / sizeof fpga_part_table[0],
               "part_family must list one family per part");

/* Per-family constants.
 * dsp_a x dsp_b: signed multiplier of one DSP slice — DSP48E2 (UltraScale,
 *   UltraScale+) 27x18 (UG579), DSP48E1 (7 series) 25x18 (UG479).
 * t_*: combinational delays in ns that Vivado/Vitis HLS's scheduler uses
 *   for chaining. Calibrated on hls4ml's C-synthesis baselines
 *   (test/pytest/baselines, xcvu13p at 5 ns): Dense(1->64)+ReLU is
 *   scheduled in 0 cycles with an estimated clock of 2.9-3.0 ns, so one
 *   DSP multiply + ReLU ~ 3.0 ns: t_mul_dsp 2.4 + t_relu 0.6. Adder: HLS's
 *   characterised carry-chain adder, ~0.7 ns + 0.015 ns/bit (16 bit ~0.94
 *   ns). BRAM clock-to-out ~0.6 ns. 7 series: the same scaled by 1.35
 *   (-1 speed grade Artix/Kintex-7 fabric vs -2 UltraScale+), an
 *   approximation, not a measurement. */
static const fpga_family families[] = {
    [FPGA_FAM_USPLUS] = {27, 18, 2.4, 0.6, 0.7, 0.015, 0.6, 1.0},
    [FPGA_FAM_ULTRASCALE] = {27, 18, 2.6, 0.65, 0.75, 0.016, 0.65, 1.08},
    [FPGA_FAM_7SERIES] = {25, 18, 3.24, 0.81, 0.95, 0.020, 0.81, 1.35},
};

const fpga_part *fpga_part_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_PARTS; i++)
        if (strcasecmp(fpga_part_table[i].name, name) == 0) return &fpga_part_table[i];
    return NULL;
}

const fpga_part *fpga_parts(int *n) {
    if (n) *n = N_PARTS;
    return fpga_part_table;
}

const fpga_family *fpga_family_of(const fpga_part *p) {
    ptrdiff_t i = p - fpga_part_table;
    if (i >= 0 && i < N_PARTS) return &families[part_family[i]];
    return &families[FPGA_FAM_USPLUS];
}

const fpga_part *fpga_part_suggest(const char *name) {
    const fpga_part *best = NULL;
    int bd = 1 << 30;
    for (int i = 0; name && i < N_PARTS; i++) {
        int d = str_edit_distance(name, fpga_part_table[i].name);
        if (d < bd) { bd = d; best = &fpga_part_table[i]; }
    }
    return best;
}
