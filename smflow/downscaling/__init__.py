"""Downscaling of the coarse (0.1 deg) soil moisture to a nested 0.01 deg (~1 km) grid.

* :mod:`.grid`: the fine grid of a domain (nested in its coarse grid, GLOBE 30" land mask) and the
  exact block mean / replication between the two grids;
* :mod:`.covariates`: the covariate stack of a domain and day, read with the native readers and
  regridded with :func:`smflow.regrid.native_to_domain` (``mean`` to aggregate, ``bilinear`` to
  refine); missing covariates are listed, never faked;
* :mod:`.methods`: the honest baseline (bilinear interpolation of the coarse field), the NN of
  Lv, Zhang & Zhu 2021 and the LSTM + simple kriging of the coarse residuals of Ming et al. 2022
  (Eqs. 1-4), tile by tile with overlap;
* :mod:`.validate`: the upscale-recover validation on the real CGLS 1 km SSM
  (``python -m smflow.downscaling.validate``).

See ``docs/downscaling.md``.
"""
