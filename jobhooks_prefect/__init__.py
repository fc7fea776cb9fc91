"""jobhooks for Prefect (arrives with the Prefect adapter)."""
