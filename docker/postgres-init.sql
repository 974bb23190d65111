-- Runs once, when the Postgres volume is first created: one database for newsflow's data,
-- one for Airflow's metadata, each with its own owner. Passwords come from the compose
-- environment (NEWSFLOW_DB_PASSWORD, AIRFLOW_DB_PASSWORD) through psql variables.
\set newsflow_password `echo "$NEWSFLOW_DB_PASSWORD"`
\set airflow_password `echo "$AIRFLOW_DB_PASSWORD"`
CREATE ROLE newsflow LOGIN PASSWORD :'newsflow_password';
CREATE DATABASE newsflow OWNER newsflow;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
