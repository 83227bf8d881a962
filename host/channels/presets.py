"""Named device presets: profiles (host.profile.Profile) with numbers from the literature.

Each preset's numbers, their source and what is our assumption are in
docs/error-models.md#presets; no preset exists without a cited number. A preset is replayed by
:class:`host.channels.profile.ProfileChannel` like a fitted profile: ``NAME[@S][,seed=D]``.
"""

from __future__ import annotations

from host.profile import Profile

#: Buschjäger et al. (seed 004): "bit error rate of RRAMs can be up to 3.3 % in the ultra
#: low-power setting"; symmetric (the 2T2R differential cell errs either way alike).
RRAM_ULP = Profile(transient_p01=0.033, transient_p10=0.033,
                   source="Buschjaeger et al., RRAM BNNs (seed 004): 3.3 % in the ultra "
                          "low-power setting, symmetric")

#: The same mean error (3.3 %) split 1:3 between 0->1 and 1->0 for a single-ended 1T1R
#: cell. The split is OUR ASSUMPTION (a weakly programmed low-resistance state relaxing
#: upwards); no public number is used for it.
RRAM_ULP_1T1R = Profile(transient_p01=0.0165, transient_p10=0.0495,
                        source="seed 004 mean 3.3 %; 1:3 split of 0->1 : 1->0 is an assumption")

#: Salami et al. (FPGA BRAM undervolting, FPL/MICRO 2018): below Vmin the fault rate rises to
#: 0.06 % of the cells, faults are 1->0 under an all-ones pattern, permanent (the same cells
#: in every run) and nested in the voltage, "fully non-uniform" over BRAMs. One block is one
#: 36 Kb BRAM used as 1K x 32 (4096 data bytes). The negative-binomial shape k = 0.3 over
#: blocks and the share 0.5 of the faults in one bit column are OUR ASSUMPTIONS for the
#: clustering the papers describe without these numbers.
_COLUMN_SHARE = 0.5
_COLUMNS = tuple([_COLUMN_SHARE * 32] + [(1 - _COLUMN_SHARE) * 32 / 31] * 31)
BRAM_UNDERVOLT = Profile(permanent_p10=6e-4, block_bytes=4096, block_k=0.3, columns=_COLUMNS,
                         source="Salami et al. 2018: 0.06 % at Vcrash, 1->0, permanent; "
                                "k = 0.3 and column share 0.5 are assumptions")

PRESETS: dict[str, tuple[Profile, str]] = {
    "rram-ulp": (RRAM_ULP, "RRAM, ultra low-power programming: 3.3 % symmetric (seed 004)"),
    "rram-ulp-1t1r": (RRAM_ULP_1T1R, "rram-ulp's 3.3 % split 1:3 (0->1 : 1->0), an assumption"),
    "bram-undervolt": (BRAM_UNDERVOLT, "undervolted FPGA BRAM: permanent 1->0 faults, 0.06 % "
                                       "of cells, clustered per BRAM and bit column "
                                       "(Salami et al. 2018)"),
}
