-- Databases of the production profile besides `recops` (dbt target, Feast registry/offline store).
create database recops_airflow;
create database recops_mlflow;
