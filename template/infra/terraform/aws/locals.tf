locals {
  # The sampled inference log (serving/inference_log.py) lands here; the drift check reads the same prefix.
  inference_log_prefix = "inference/"
  inference_log_uri    = "s3://${aws_s3_bucket.project["data"].bucket}/${local.inference_log_prefix}"
  # serving managed: SageMaker's data capture of the endpoint's calls (converted by the drift check's pull).
  data_capture_prefix = "${local.inference_log_prefix}capture/"
  data_capture_uri    = "s3://${aws_s3_bucket.project["data"].bucket}/${local.data_capture_prefix}"
  name                = "${var.project}-${var.environment}"
  # feature_store = feast: the Feast feature views, an online table each. There is one, named as the contract is
  # (contract.yaml's `name`, the team's): read from the contract, so that renaming it changes no file of this module.
  feature_views = var.feature_store == "feast" ? [yamldecode(file("${path.module}/../../../contract.yaml"))["name"]] : []
  # feature_store = feast: where the served container finds the feature store (feature_store.tf)
  feature_store_environment = length(local.feature_views) > 0 ? [
    { name = "FEATURE_STORE_YAML", value = "feature_repo/feature_store.cloud.yaml" },
    { name = "FEATURE_STORE_URI", value = "s3://${aws_s3_bucket.project["data"].bucket}/feature_store" },
    { name = "FEATURE_STORE_TABLE_PREFIX", value = "${var.project}-${var.environment}" },
    { name = "AWS_REGION", value = var.region },
  ] : []
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  is_production = var.environment == "production"

  # Serving resources exist only once CD has pushed an image: the first apply creates storage, registry and
  # identity, CD pushes the image, then `make deploy IMAGE_TAG=<sha>` creates or updates the serving resources.
  serving_enabled = var.image_tag != ""
  # By digest whenever CD gives one (production always): a tag pushed again can never change what runs.
  image_uri = var.image_digest != "" ? "${local.image_repository_url}@${var.image_digest}" : "${local.image_repository_url}:${var.image_tag}"

  # One image repository serves every environment: CD builds an image once and deploys the same tag to staging,
  # then production. The stack with create_image_repository = true (staging) owns it; the others pull from it.
  registry_account_id  = var.registry_account_id != "" ? var.registry_account_id : local.account_id
  image_repository_arn = "arn:${local.partition}:ecr:${var.region}:${local.registry_account_id}:repository/${var.project}"
  image_repository_url = "${local.registry_account_id}.dkr.ecr.${var.region}.amazonaws.com/${var.project}"
}
