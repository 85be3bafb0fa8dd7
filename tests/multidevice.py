"""The 8-device run: every multi-device check script in one process with 8 simulated CPU devices (XLA_FLAGS set by
the caller, `tests.helpers.run_on_8_devices`), so that the suite starts JAX on 8 devices once. Prints one JSON line
{script: its main()'s results}; the `on_8_devices` fixture (tests/conftest.py) hands them to the tests.

A new multi-device check is a module with a main() that returns JSON-able results, listed in SCRIPTS.
"""
import json

from tests.serving import multidevice_generate
from tests.training import multidevice_finetune, multidevice_losses

SCRIPTS = {'train': multidevice_losses, 'lora': multidevice_finetune, 'serve': multidevice_generate}


if __name__ == '__main__':
  print(json.dumps({name: script.main() for name, script in SCRIPTS.items()}))
