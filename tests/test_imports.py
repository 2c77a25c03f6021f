"""Any module of the package can be the first one imported (Keras's first import registers the classes)."""

import subprocess
import sys

import pytest

# Modules that import each other and Keras: the first import of Keras, from inside one of them,
# makes the package register every class while that module is half-loaded (it once failed for these).
FIRST_IMPORTS = ("models", "layers", "classifier")


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_a_module_imported_first_loads_and_the_classes_are_registered(module):
    script = f"""
import stl_denoise.{module}
import keras
assert keras.saving.get_registered_object("stl_denoise>GatedSkip") is not None
assert keras.saving.get_registered_object("stl_denoise>BatchAccuracy") is not None
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
