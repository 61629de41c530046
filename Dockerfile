# The production image: the official Airflow image (same Airflow and Python as the tested venv) plus the
# project's pinned requirements. DAGs, plugins and include/ are mounted by docker-compose.yaml, not baked in,
# so a deploy of new DAG code is a `git pull` on the host.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /opt/airflow/requirements.txt
# Re-stating the Airflow pin keeps pip from upgrading or downgrading the image's Airflow.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

# Mount points of the named volumes for scratch files and published feeds: a fresh named volume takes its
# owner from the image, so they must exist here, owned by the airflow user.
USER root
RUN mkdir -p /opt/airflow/work /opt/airflow/feeds && chown airflow:0 /opt/airflow/work /opt/airflow/feeds
USER airflow

# `python -m mpsync ...` (migrate, inspect) outside Airflow, which adds plugins/ to sys.path by itself.
ENV PYTHONPATH=/opt/airflow/plugins
