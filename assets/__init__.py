"""Assets: the data the base holds, one module per asset, grouped by stage (their Definitions are in
`assets.definitions`, so a Dask worker importing one kernel does not import dagster and every asset)."""
