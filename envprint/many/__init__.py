"""Many models or hosts: sweep (models here), fleet (one model on every Ray node), aggregate (reports of any engine), the local worker pool and the Ray engine."""
