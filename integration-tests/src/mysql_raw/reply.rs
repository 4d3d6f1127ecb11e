//! What [`super::RawConn`] hands a test: replies, row values, columns, prepared statements
//! and the parameters to execute them with.

/// A value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as an integer: binary integers, or text that parses as one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub column_type: u8,
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    pub message: String,
}

/// One answer from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok {
        affected_rows: u64,
        status: u16,
    },
    Err(ServerError),
    /// A result set; `status` is the one its terminator carried.
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
        status: u16,
    },
}

impl Reply {
    /// The rows of a result set; panics (naming the reply) on anything else.
    pub fn rows(&self) -> &[Vec<Value>] {
        match self {
            Reply::Rows { rows, .. } => rows,
            other => panic!("expected a result set, got {other:?}"),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Reply::Ok { status, .. } | Reply::Rows { status, .. } => *status,
            Reply::Err(_) => 0,
        }
    }

    pub fn err_code(&self) -> Option<u16> {
        match self {
            Reply::Err(e) => Some(e.code),
            _ => None,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Ok { .. })
    }
}

/// A statement prepared with [`RawConn::prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stmt {
    pub id: u32,
    pub params: u16,
    pub columns: u16,
}

/// A parameter of COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Bytes(Vec<u8>),
    /// A BLOB whose value went before with COM_STMT_SEND_LONG_DATA.
    LongData,
}
