-- The customer's schema, copied from database-setup.md (Step 2) as the contract the migrations must match.
-- Two edits only: uuid_generate_v4() became core gen_random_uuid(), and the uuid-ossp extension line is gone.
-- Orders table
CREATE TABLE orders (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id VARCHAR(255) UNIQUE NOT NULL,
    platform VARCHAR(50) NOT NULL,
    amazon_order_id VARCHAR(255),
    project VARCHAR(100) NOT NULL,
    customer_first_name VARCHAR(100) NOT NULL,
    customer_last_name VARCHAR(100) NOT NULL,
    customer_email VARCHAR(255) NOT NULL,
    order_date TIMESTAMP WITH TIME ZONE NOT NULL,
  status VARCHAR(50) NOT NULL,
    ai_generation_started_at TIMESTAMP WITH TIME ZONE,
    character_hash VARCHAR(100),
    character_path VARCHAR(500),
    template_path VARCHAR(500),
  character_specs JSONB,
    book_specs JSONB,
    order_details JSONB,
    asset_prefix VARCHAR(500),
    webhooks JSONB,
    r2_assets JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Review stages table
CREATE TABLE review_stages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id VARCHAR(255) NOT NULL REFERENCES orders(order_id) ON DELETE CASCADE,
    stage_name VARCHAR(50) NOT NULL, -- 'preBria', 'postBria', 'postPdf'
    status VARCHAR(50) NOT NULL DEFAULT 'pending', -- 'pending', 'in_review', 'approved', 'rejected'
    reviewed_at TIMESTAMP WITH TIME ZONE,
    reviewer_email VARCHAR(255),
    reviewer_notes TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(order_id, stage_name)
);

-- Approvals table (replaces file-based approval store)
CREATE TABLE approvals (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id VARCHAR(255) NOT NULL,
    stage VARCHAR(50) NOT NULL,
    status VARCHAR(50) NOT NULL DEFAULT 'pending', -- 'pending', 'approved'
    approved_at TIMESTAMP WITH TIME ZONE,
    reviewer_email VARCHAR(255) NOT NULL,
    reviewer_notes TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(order_id, stage)
);

-- Audit trail table
CREATE TABLE audit_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id VARCHAR(255) NOT NULL,
    action VARCHAR(100) NOT NULL, -- 'stage_approved', 'stage_rejected', 'asset_replaced', etc.
    stage VARCHAR(50),
    reviewer_email VARCHAR(255),
    details JSONB,
    ip_address INET,
    user_agent TEXT,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Error logs table
CREATE TABLE error_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    error_id VARCHAR(100) UNIQUE NOT NULL,
    error_type VARCHAR(50) NOT NULL,
    severity VARCHAR(20) NOT NULL,
    message TEXT NOT NULL,
    details JSONB,
    user_id VARCHAR(255),
    request_id VARCHAR(100),
    user_agent TEXT,
    ip_address INET,
    stack_trace TEXT,
    resolved BOOLEAN DEFAULT FALSE,
    resolved_at TIMESTAMP WITH TIME ZONE,
    resolved_by VARCHAR(255),
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Indexes for performance
CREATE INDEX idx_orders_order_id ON orders(order_id);
CREATE INDEX idx_orders_status ON orders(status);
CREATE INDEX idx_orders_character_hash ON orders(character_hash);
CREATE INDEX idx_orders_order_date ON orders(order_date);
CREATE INDEX idx_orders_customer_email ON orders(customer_email);

CREATE INDEX idx_review_stages_order_id ON review_stages(order_id);
CREATE INDEX idx_review_stages_stage_name ON review_stages(stage_name);
CREATE INDEX idx_review_stages_status ON review_stages(status);

CREATE INDEX idx_approvals_order_id ON approvals(order_id);
CREATE INDEX idx_approvals_stage ON approvals(stage);
CREATE INDEX idx_approvals_status ON approvals(status);

CREATE INDEX idx_audit_logs_order_id ON audit_logs(order_id);
CREATE INDEX idx_audit_logs_action ON audit_logs(action);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at);

CREATE INDEX idx_error_logs_error_type ON error_logs(error_type);
CREATE INDEX idx_error_logs_severity ON error_logs(severity);
CREATE INDEX idx_error_logs_resolved ON error_logs(resolved);
CREATE INDEX idx_error_logs_created_at ON error_logs(created_at);

-- Triggers for updated_at timestamps
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ language 'plpgsql';

CREATE TRIGGER update_orders_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER update_review_stages_updated_at BEFORE UPDATE ON review_stages
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER update_approvals_updated_at BEFORE UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
