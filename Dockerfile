# Airflow with airflow-provider-signzy installed: the image of every Airflow service in docker-compose.yaml,
# and of the Signzy emulator service. Keep AIRFLOW_VERSION equal to the base image's tag.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:3.3.2
ARG AIRFLOW_VERSION
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-provider-signzy/
COPY --chown=airflow:root airflow_provider_signzy /opt/airflow-provider-signzy/airflow_provider_signzy
# Pinning apache-airflow stops pip from upgrading or downgrading the image's Airflow.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/airflow-provider-signzy
