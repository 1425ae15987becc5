"""Facts about the host without TensorFlow: processes, CPU, packages, environment, GPUs and drivers, pip constraints, and the pure rules of TensorFlow and Keras releases."""
