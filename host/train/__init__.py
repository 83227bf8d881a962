"""Training (the optional ``train`` extra, torch). Nothing here is imported by the core: the
``host train-bnn`` command imports :mod:`host.train.bnn` only when it runs."""
