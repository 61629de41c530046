"""The only Airflow-facing part of mpsync: connections, variables, sensors, callbacks.

Everything here is thin: it turns Airflow objects into plain values and calls the domain code.
"""
