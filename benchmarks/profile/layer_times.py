"""Forward and forward+backward time of each Table 1 layer alone, batch 10 (input gradients included).

    python benchmarks/profile/layer_times.py
"""
import statistics
import time

# stl_denoise first: its TensorFlow settings (oneDNN, quiet logs) must be in place before Keras loads TensorFlow.
from stl_denoise._quiet import import_tensorflow

# isort: split
import keras

tf = import_tensorflow()
B = 10


def bench(layer, shape, n=30):
    x = tf.random.uniform(shape)
    layer.build(shape)

    @tf.function
    def step(x):
        with tf.GradientTape() as t:
            t.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y)
        return t.gradient(loss, [x] + layer.trainable_variables)
    for _ in range(5):
        step(x)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = step(x)
        _ = [v.numpy() for v in r[:1]]
        ts.append(time.perf_counter() - t0)

    @tf.function
    def fwd(x):
        return layer(x)
    for _ in range(5):
        fwd(x)
    fs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fwd(x).numpy()
        fs.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, statistics.median(fs) * 1e3


specs=[("conv1",keras.layers.Conv2D(64,3,1,"same",activation="relu"),(B,64,64,3)),
("conv2",keras.layers.Conv2D(64,3,2,"same",activation="relu"),(B,64,64,64)),
("conv3",keras.layers.Conv2D(128,3,2,"same",activation="relu"),(B,32,32,64)),
("conv4",keras.layers.Conv2D(256,3,2,"same",activation="relu"),(B,16,16,128)),
("conv5",keras.layers.Conv2D(512,3,2,"same",activation="relu"),(B,8,8,256)),
("deconv1",keras.layers.Conv2DTranspose(256,3,2,"same",activation="relu"),(B,4,4,512)),
("deconv2",keras.layers.Conv2DTranspose(128,3,2,"same",activation="relu"),(B,8,8,256)),
("deconv3",keras.layers.Conv2DTranspose(64,3,2,"same",activation="relu"),(B,16,16,128)),
("deconv4",keras.layers.Conv2DTranspose(64,3,2,"same",activation="relu"),(B,32,32,64)),
("deconv5",keras.layers.Conv2DTranspose(3,3,1,"same",activation="relu"),(B,64,64,64)),
("deconv5asconv",keras.layers.Conv2D(3,3,1,"same",activation="relu"),(B,64,64,64)),
]
tot = 0
for name, layer, shape in specs:
    tb, f = bench(layer, shape)
    tot += tb if 'asconv' not in name else 0
    print(f"{name:14s} fwd+bwd {tb:6.2f} ms  fwd {f:6.2f} ms", flush=True)
print("sum", tot)
