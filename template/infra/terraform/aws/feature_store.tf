# feature_store = feast: the online store of /predict by id, and who may read and write it.
#
# DynamoDB rather than ElastiCache for Redis: a table is reached over IAM-signed HTTPS through a free gateway
# endpoint, so the service needs no cache cluster, subnet group, security group or AUTH token in the VPC, access
# is granted per table and per action in IAM (read for the service, write for CI's materialisation), and an
# on-demand table costs nothing while idle. One table per feature view, named as Feast looks for it
# (table_name_template of feature_repo/feature_store.cloud.yaml: `<project>-<environment>.<view>`, key
# `entity_id`); Feast finds it at `feast apply` and never creates one.
#
# The registry and the offline source (a Parquet file) are objects under feature_store/ of the data bucket.

locals {
  feature_store_prefix = "feature_store/"
  feature_store_uri    = "s3://${aws_s3_bucket.project["data"].bucket}/feature_store"
  feature_table_arns   = [for table in aws_dynamodb_table.features : table.arn]
  # CI's roles (the environment's and main's): `make pipeline` applies the registry and materialises the window
  feature_store_writers = merge({ ci = aws_iam_role.ci.id }, var.create_main_branch_role ? { ci-main = aws_iam_role.ci_main[0].id } : {})
}

resource "aws_dynamodb_table" "features" {
  for_each = toset(local.feature_views)

  name                        = "${local.name}.${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "entity_id"
  deletion_protection_enabled = local.is_production

  attribute {
    name = "entity_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }

  tags = { Name = "${local.name}.${each.key}", feature_view = each.key }
}

# The tasks reach DynamoDB without a NAT: a gateway endpoint on the private route table (free, like S3's).
resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.dynamodb"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]

  tags = { Name = "${local.name}-dynamodb" }
}

resource "aws_vpc_security_group_egress_rule" "api_tasks_to_dynamodb" {
  security_group_id = aws_security_group.api_tasks.id
  description       = "HTTPS to DynamoDB through the gateway endpoint (the online feature store)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.dynamodb.prefix_list_id
}

# The service: reads the feature tables and the registry, nothing else (no write, no scan, no other table).
resource "aws_iam_role_policy" "task_reads_features" {
  name   = "read-online-features"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_reads_features.json
}

data "aws_iam_policy_document" "task_reads_features" {
  statement {
    sid       = "ReadFeatureTables"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:DescribeTable"]
    resources = local.feature_table_arns
  }

  statement {
    sid       = "ReadFeatureRegistry"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.project["data"].arn}/${local.feature_store_prefix}registry.db"]
  }

  statement {
    sid       = "DecryptFeatures"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.region}.amazonaws.com", "s3.${var.region}.amazonaws.com"]
    }
  }
}

# CI's pipeline: writes the registry and the offline source, materialises into the tables (no table creation or
# deletion: Terraform owns the tables).
resource "aws_iam_role_policy" "ci_writes_features" {
  for_each = local.feature_store_writers

  name   = "write-feature-store"
  role   = each.value
  policy = data.aws_iam_policy_document.ci_writes_features.json
}

data "aws_iam_policy_document" "ci_writes_features" {
  statement {
    sid       = "MaterialiseFeatureTables"
    actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:DescribeTable"]
    resources = local.feature_table_arns
  }

  statement {
    sid       = "FeatureStoreObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.project["data"].arn}/${local.feature_store_prefix}*"]
  }

  statement {
    sid       = "EncryptFeatures"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.region}.amazonaws.com", "s3.${var.region}.amazonaws.com"]
    }
  }
}

output "feature_store_uri" {
  description = "FEATURE_STORE_URI of CI's pipeline: the registry and the offline source of the feature store."
  value       = local.feature_store_uri
}

output "feature_store_table_prefix" {
  description = "FEATURE_STORE_TABLE_PREFIX: the DynamoDB tables are <prefix>.<feature view>."
  value       = local.name
}
