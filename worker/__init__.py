"""The Celery worker that trains models (see the training-jobs issue).

Nothing here imports TensorFlow or Keras at module level: they are imported
inside functions, in the worker's child processes only.
"""
