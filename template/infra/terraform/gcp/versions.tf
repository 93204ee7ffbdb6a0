terraform {
  required_version = ">= 1.6, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }

  # Settings come from envs/<environment>.backend.hcl (`make infra-init ENV=<environment>`).
  # The GCS backend locks the state with a lock object, so concurrent applies fail fast instead of racing.
  backend "gcs" {}
}
