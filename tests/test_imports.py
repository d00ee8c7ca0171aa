"""The API process never imports TensorFlow, Keras or Celery."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "celery", "jax", "torch")


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


def test_worker_builder_defers_keras():
    modules = loaded_after("import worker.builder")
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)
