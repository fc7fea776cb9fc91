"""jobhooks for Apache Airflow (arrives with the Airflow adapter)."""
