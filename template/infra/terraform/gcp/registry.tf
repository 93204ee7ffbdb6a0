# Docker repository of the serving image. Tags are immutable (a tag is a git SHA and always means the same image);
# every pushed image is scanned for vulnerabilities by Artifact Analysis (containerscanning.googleapis.com, enabled
# in apis.tf); cleanup policies keep storage costs flat.

resource "google_artifact_registry_repository" "images" {
  repository_id = local.name
  location      = var.region
  format        = "DOCKER"
  description   = "Serving images of ${var.project} (${var.environment})"
  kms_key_name  = google_kms_crypto_key.this.id

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent-versions"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_image_versions
    }
  }

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "604800s" # 7 days
    }
  }

  cleanup_policies {
    id     = "delete-old-versions"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "7776000s" # 90 days, unless kept by keep-recent-versions
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

# Another environment's serving identities may pull the images built once by CD (see image_repository).
resource "google_artifact_registry_repository_iam_member" "image_readers" {
  for_each = toset(var.image_readers)

  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}
