"""One worker of a multi-worker run (tests/test_distribute.py): the CLI, after an optional look at its data.

Usage: worker.py PROBE.npy|- stl-denoise arguments...

``TF_CONFIG`` names the cluster and this worker.  With a probe file, the
worker first saves the clean crops that tf.distribute hands it for the first
three steps (``experimental_distribute_dataset`` of the recipe's dataset, as
``model.fit`` receives them), then runs the command with the same strategy.
"""

import sys

import numpy as np

from stl_denoise.cli import build_parser, config_from_args, main
from stl_denoise.distribute import make_strategy

probe, argv = sys.argv[1], sys.argv[2:]
if probe != "-":
    strategy = make_strategy("multiworker")  # the process's one strategy: the run below reuses it
    import keras

    from stl_denoise.train import DenoiserRecipe

    config = config_from_args(build_parser().parse_args(argv))
    keras.utils.set_random_seed(config.seed)  # as the runner does before building the data stream
    dataset = DenoiserRecipe(config).dataset(skip_batches=0)
    batches = iter(strategy.experimental_distribute_dataset(dataset))
    crops = [strategy.experimental_local_results(next(batches)[0])[0].numpy() for _ in range(3)]
    np.save(probe, np.stack(crops))
sys.exit(main(argv))
