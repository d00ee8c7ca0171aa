"""The API process never imports TensorFlow or Keras (nor JAX, nor PyTorch).

It does import Celery, as a producer that sends tasks by name."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "jax", "torch")


def loaded_after(code):
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_api_process_stays_light():
    modules = loaded_after(
        "from service import create_app\n"
        "c = create_app({'TESTING': True}).test_client()\n"
        "assert c.post('/params', json={'input_shape': [5, 1], 'layers': "
        "[{'type': 'LSTM', 'units': 5}]}).status_code == 200"
    )
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)


def test_worker_main_process_defers_keras():
    # What `celery -A worker.celery_app worker` imports before forking.
    modules = loaded_after("import worker.celery_app, worker.tasks, worker.builder")
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)
