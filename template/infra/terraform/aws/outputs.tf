output "data_bucket" {
  description = "Bucket of the DVC remote (s3://<bucket>/dvc) and of batch input/output."
  value       = aws_s3_bucket.project["data"].id
}

output "model_bucket" {
  description = "Bucket of model artifacts."
  value       = aws_s3_bucket.project["models"].id
}

output "image_repository" {
  description = "Full registry path of the image (GitHub variable IMAGE_REPOSITORY)."
  value       = local.image_repository_url
}

output "ci_role_arn" {
  description = "Role of the jobs in this GitHub environment: deploy and apply (environment variable AWS_CI_ROLE_ARN)."
  value       = aws_iam_role.ci.arn
}

output "ci_main_role_arn" {
  description = "Role of main-branch jobs: image push, DVC, drift (repository variable AWS_CI_ROLE_ARN); \"\" if none."
  value       = var.create_main_branch_role ? aws_iam_role.ci_main[0].arn : ""
}

output "ci_plan_role_arn" {
  description = "Read-only role of `terraform plan` in pull requests (repository variable AWS_CI_PLAN_ROLE_ARN)."
  value       = aws_iam_role.ci_plan.arn
}

output "kms_key_arn" {
  description = "Customer-managed key that encrypts the buckets, registry, logs and alerts."
  value       = aws_kms_key.main.arn
}

output "cloud_region" {
  description = "Region of every resource (GitHub variable CLOUD_REGION)."
  value       = var.region
}

output "service_url" {
  description = "HTTPS URL (container), endpoint name (managed) or schedule name (batch); empty until deployed."
  value       = local.service_url
}

output "image_tag" {
  description = "Image tag deployed by the last apply (empty before the first deploy): the rollback target."
  value       = var.image_tag
}

output "image_digest" {
  description = "Image digest deployed by the last apply (empty when deployed by tag): the rollback target in production."
  value       = var.image_digest
}
