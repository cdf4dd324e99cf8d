-- Run once by the postgres image on an empty data volume: one database per service.
CREATE DATABASE user_service;
CREATE DATABASE order_service;
