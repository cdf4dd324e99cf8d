"""Offline checks of the deployment files: deploy/kubernetes as kustomize renders it, checked
against the Kubernetes schemas and checkov's policies, and tied to the code it deploys."""
