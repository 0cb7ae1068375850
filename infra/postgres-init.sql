-- The databases of the shared stack, created once when the PostgreSQL volume is new.
CREATE DATABASE mlflow;
CREATE DATABASE lineage;
CREATE DATABASE prefect;
